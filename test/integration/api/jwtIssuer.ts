/** An OAuth2 issuer for the API's JWT tests: a JWKS served on loopback, tokens signed with jose. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';

export interface JwtIssuer {
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** A signed token; `key` signs with a key the JWKS does not hold. */
  token(
    claims: Record<string, unknown>,
    o?: { key?: KeyLike; iss?: string; aud?: string; exp?: string | number },
  ): Promise<string>;
  /** A private key the JWKS does not know. */
  otherKey: KeyLike;
  close(): Promise<void>;
}

export async function startJwtIssuer(): Promise<JwtIssuer> {
  const issuer = 'https://auth.hospital.example';
  const audience = 'pacs-fhir-bridge';
  const pair = await generateKeyPair('RS256');
  const otherKey = (await generateKeyPair('RS256')).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const app = express();
  app.get('/.well-known/jwks.json', (_req, res) => void res.json({ keys: [jwk] }));
  const server: Server = await new Promise((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  return {
    jwksUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`,
    issuer,
    audience,
    otherKey,
    token: (claims, o = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(o.iss ?? issuer)
        .setAudience(o.aud ?? audience)
        .setIssuedAt()
        .setExpirationTime(o.exp ?? '5m')
        .sign(o.key ?? pair.privateKey),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
