/**
 * The Authorization header for a PACS: none, HTTP Basic, a static bearer token, or an OAuth2
 * client-credentials token fetched with axios, cached, and renewed before it expires.
 * Messages never contain credentials or tokens.
 */
import type { Agent } from 'node:https';
import axios from 'axios';
import type { PacsAuth } from '../config/schema';
import { PacsError } from './types';

export interface Authorizer {
  /** The header value to send, or undefined for none. */
  header(): Promise<string | undefined>;
  /** Forget a cached token (after a 401), so the next header() fetches a new one. */
  invalidate(): void;
  readonly refreshable: boolean;
}

export interface TokenOptions {
  sourceId: string;
  timeoutMs: number;
  httpsAgent?: Agent;
  onTokenRequest?: () => void;
  now?: () => number;
}

/** Renew this long before expiry (or a tenth of the lifetime, for short-lived tokens). */
const EARLY_RENEWAL_MS = 60_000;

export function createAuthorizer(auth: PacsAuth, opts: TokenOptions): Authorizer {
  switch (auth.type) {
    case 'none':
      return { header: async () => undefined, invalidate: () => {}, refreshable: false };
    case 'basic': {
      const value = `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`;
      return { header: async () => value, invalidate: () => {}, refreshable: false };
    }
    case 'bearer':
      return { header: async () => `Bearer ${auth.token}`, invalidate: () => {}, refreshable: false };
    case 'oauth2':
      return oauth2(auth, opts);
  }
}

function oauth2(auth: Extract<PacsAuth, { type: 'oauth2' }>, opts: TokenOptions): Authorizer {
  const now = opts.now ?? Date.now;
  let cached: { value: string; renewAt: number } | undefined;
  let inFlight: Promise<string> | undefined;

  const fetchToken = async (): Promise<string> => {
    opts.onTokenRequest?.();
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (auth.scope) form.set('scope', auth.scope);
    const headers: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' };
    if (auth.clientAuth === 'client_secret_post') {
      form.set('client_id', auth.clientId);
      form.set('client_secret', auth.clientSecret);
    } else {
      // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
      const pair = `${encodeURIComponent(auth.clientId)}:${encodeURIComponent(auth.clientSecret)}`;
      headers.Authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
    }
    const where = `OAuth2 token endpoint for source "${opts.sourceId}"`;
    let res;
    try {
      res = await axios.post(auth.tokenUrl, form.toString(), {
        headers,
        timeout: opts.timeoutMs,
        httpsAgent: opts.httpsAgent,
        validateStatus: () => true,
      });
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'network error';
      throw new PacsError(`${where} unreachable (${code})`, 0, code === 'ECONNABORTED' ? 'timeout' : 'network', true);
    }
    if (res.status === 400 || res.status === 401 || res.status === 403) {
      const err = typeof res.data === 'object' && res.data?.error ? ` (${String(res.data.error).slice(0, 64)})` : '';
      throw new PacsError(`${where} refused the client credentials: HTTP ${res.status}${err}; check clientId/clientSecret/scope`, res.status, 'auth', false);
    }
    if (res.status >= 300) {
      throw new PacsError(`${where} answered HTTP ${res.status}`, res.status, 'http', res.status === 429 || res.status >= 500);
    }
    const token = res.data?.access_token;
    if (typeof token !== 'string' || !token) {
      throw new PacsError(`${where} answered without an access_token`, res.status, 'bad-response', false);
    }
    const lifetimeMs = Number(res.data?.expires_in) > 0 ? Number(res.data.expires_in) * 1000 : 300_000;
    const value = `Bearer ${token}`;
    cached = { value, renewAt: now() + lifetimeMs - Math.min(EARLY_RENEWAL_MS, lifetimeMs / 10) };
    return value;
  };

  return {
    refreshable: true,
    async header() {
      if (cached && now() < cached.renewAt) return cached.value;
      // One request for the token, however many PACS requests are waiting for it.
      inFlight ??= fetchToken().finally(() => (inFlight = undefined));
      return inFlight;
    },
    invalidate() {
      cached = undefined;
    },
  };
}
