/**
 * Access control for the FHIR API: API keys (stored as SHA-256, compared in constant time) or OAuth2
 * bearer JWTs verified against the issuer's JWKS (jose), with SMART scopes deciding what a client may
 * read. No credential ever reaches a log line or an error message.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { ApiAuthConfig } from './config';
import { FhirError } from './fhir/outcome';

export interface Principal {
  /** Who is asking: the key's client name or the token's client_id/azp/sub. */
  client: string;
  scopes: string[];
  /** A SMART launch context (the token's `patient` claim): user/ scopes are then not honoured (see scopeAllows). */
  patient?: string;
}

export type Authenticator = (headers: {
  authorization?: string;
  'x-api-key'?: string | string[];
}) => Promise<Principal>;

const unauthorized = (message: string, challenge: string) =>
  new FhirError(401, 'login', message, undefined, { 'WWW-Authenticate': challenge });

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

function apiKeyAuthenticator(keys: Extract<ApiAuthConfig, { type: 'apiKey' }>['keys']): Authenticator {
  const stored = keys.map((k) => ({ ...k, digest: Buffer.from(k.sha256, 'hex') }));
  return async (headers) => {
    const raw = headers['x-api-key'];
    const key = Array.isArray(raw) ? raw[0] : raw;
    if (!key) throw unauthorized('An API key is required (X-API-Key header).', 'ApiKey realm="fhir"');
    const digest = createHash('sha256').update(key, 'utf8').digest();
    // Compare against every key so timing says nothing about which (if any) matched.
    let found: (typeof stored)[number] | undefined;
    for (const k of stored) if (timingSafeEqual(k.digest, digest) && !found) found = k;
    if (!found) throw unauthorized('The API key is not valid.', 'ApiKey realm="fhir", error="invalid_key"');
    return { client: found.client, scopes: found.scopes };
  };
}

function scopesOf(payload: JWTPayload): string[] {
  const s = payload.scope ?? payload.scp;
  if (typeof s === 'string') return s.split(/\s+/).filter(Boolean);
  if (Array.isArray(s)) return s.filter((x): x is string => typeof x === 'string');
  return [];
}

function jwtAuthenticator(cfg: Extract<ApiAuthConfig, { type: 'jwt' }>): Authenticator {
  const jwks = createRemoteJWKSet(new URL(cfg.jwksUrl), {
    timeoutDuration: 5000,
    cooldownDuration: 30_000,
    cacheMaxAge: 600_000,
  });
  return async (headers) => {
    const m = /^Bearer\s+([A-Za-z0-9\-_.~+/]+=*)\s*$/i.exec(headers.authorization ?? '');
    if (!m) throw unauthorized('A bearer token is required (Authorization: Bearer <JWT>).', 'Bearer realm="fhir"');
    try {
      const { payload } = await jwtVerify(m[1], jwks, {
        issuer: cfg.issuer,
        audience: cfg.audience,
        algorithms: cfg.algorithms,
        clockTolerance: cfg.clockToleranceSeconds,
      });
      const client =
        [payload.client_id, payload.azp, payload.sub].find((v): v is string => typeof v === 'string' && v.length > 0) ??
        'unknown';
      const patient = typeof payload.patient === 'string' && payload.patient ? payload.patient : undefined;
      return { client: client.slice(0, 128), scopes: scopesOf(payload), ...(patient ? { patient } : {}) };
    } catch (err) {
      if (err instanceof joseErrors.JWKSTimeout || !(err instanceof joseErrors.JOSEError)) {
        // The authorization server's keys could not be fetched: not the client's fault.
        throw new FhirError(
          503,
          'transient',
          'The token could not be checked now (signing keys unavailable); try again later.',
        );
      }
      const why =
        err instanceof joseErrors.JWTExpired
          ? 'has expired'
          : err instanceof joseErrors.JWTClaimValidationFailed
            ? `fails the "${err.claim}" check`
            : 'is not valid';
      throw unauthorized(`The bearer token ${why}.`, 'Bearer realm="fhir", error="invalid_token"');
    }
  };
}

export function createAuthenticator(cfg: ApiAuthConfig): Authenticator | undefined {
  switch (cfg.type) {
    case 'none':
      return undefined;
    case 'apiKey':
      return apiKeyAuthenticator(cfg.keys);
    case 'jwt':
      return jwtAuthenticator(cfg);
  }
}

/**
 * SMART scopes: v1 `system/ImagingStudy.read`, `user/*.read`, `system/ImagingStudy.*`, and v2
 * `system/ImagingStudy.rs` (r = read, s = search). Patient context is refused, not confined: `patient/`
 * scopes are never honoured, and `user/` scopes are not when the token names a patient (`patient`
 * claim), since this API does not narrow answers to one patient's compartment.
 */
export function scopeAllows(
  scopes: string[],
  resourceType: string,
  interaction: 'read' | 'search',
  patientContext = false,
): boolean {
  return scopes.some((scope) => {
    const m = /^(system|user)\/([A-Za-z]+|\*)\.([a-z*]+)(\?.*)?$/.exec(scope);
    if (!m || m[4]) return false; // v2 scopes with query restrictions are not honoured
    if (patientContext && m[1] === 'user') return false;
    const [, , type, perm] = m;
    if (type !== '*' && type !== resourceType) return false;
    if (perm === 'read' || perm === '*') return true;
    if (!/^c?r?u?d?s?$/.test(perm)) return false;
    return perm.includes(interaction === 'read' ? 'r' : 's');
  });
}
