/**
 * Credentials for the FHIR server: none, a static bearer token, or OAuth2 client credentials
 * (RFC 6749 §4.4) with client_secret_basic or client_secret_post. OAuth2 tokens are cached until
 * shortly before they expire and fetched again on demand or after a 401.
 */
import axios, { type AxiosInstance } from 'axios';
import type { FhirAuth } from './config';
import { FhirSinkError } from './errors';
import { errorBodyText } from './outcome';

export interface TokenSource {
  /** The Authorization header value, or undefined for no auth. */
  authorization(): Promise<string | undefined>;
  /** Forget the cached token (after a 401); false when a fresh one cannot be had (static or none). */
  invalidate(): boolean;
  /** Token endpoint calls made so far. */
  readonly tokenRequests: number;
}

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding. */
function basicCredentials(clientId: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64');
}

class OAuth2ClientCredentials implements TokenSource {
  tokenRequests = 0;
  private cached?: { header: string; expiresAt: number };
  private pending?: Promise<string>;

  constructor(
    private readonly auth: Extract<FhirAuth, { type: 'oauth2' }>,
    private readonly http: AxiosInstance,
  ) {}

  async authorization(): Promise<string> {
    if (this.cached && this.cached.expiresAt > Date.now()) return this.cached.header;
    // One token request at a time, shared by every caller waiting for it.
    this.pending ??= this.fetchToken().finally(() => (this.pending = undefined));
    return this.pending;
  }

  invalidate(): boolean {
    this.cached = undefined;
    return true;
  }

  private async fetchToken(): Promise<string> {
    const { tokenUrl, clientId, clientSecret, scope, clientAuth } = this.auth;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (scope) form.set('scope', scope);
    const headers: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' };
    if (clientAuth === 'client_secret_basic') headers.Authorization = `Basic ${basicCredentials(clientId, clientSecret)}`;
    else {
      form.set('client_id', clientId);
      form.set('client_secret', clientSecret);
    }
    this.tokenRequests++;
    let res;
    try {
      res = await this.http.post(tokenUrl, form.toString(), { headers, validateStatus: () => true });
    } catch (err) {
      throw new FhirSinkError(`OAuth2 token endpoint ${tokenUrl} unreachable: ${(err as Error).message}`, 'network', true);
    }
    const body = res.data as { access_token?: string; token_type?: string; expires_in?: number };
    if (res.status >= 400 || !body?.access_token) {
      const detail = errorBodyText(res.data) ?? 'no access_token in the answer';
      throw new FhirSinkError(
        `OAuth2 token request to ${tokenUrl} failed (${res.status}): ${detail} — check sinks.fhir.auth (clientId, clientSecret, clientAuth)`,
        'auth',
        true,
        res.status,
      );
    }
    const lifetimeMs = (Number(body.expires_in) || 300) * 1000;
    // Renew a little early (10% of the lifetime, at most 30 s) so a token does not expire in flight.
    const margin = Math.min(30000, lifetimeMs / 10);
    const header = `Bearer ${body.access_token}`;
    this.cached = { header, expiresAt: Date.now() + lifetimeMs - margin };
    return header;
  }
}

export function createTokenSource(auth: FhirAuth, http: AxiosInstance = axios.create({ timeout: 30000 })): TokenSource {
  switch (auth.type) {
    case 'none':
      return { authorization: async () => undefined, invalidate: () => false, tokenRequests: 0 };
    case 'bearer':
      return { authorization: async () => `Bearer ${auth.token}`, invalidate: () => false, tokenRequests: 0 };
    case 'oauth2':
      return new OAuth2ClientCredentials(auth, http);
  }
}
