/**
 * The Authorization header for a PACS: none, HTTP Basic, a static bearer token, or an OAuth2
 * client-credentials token fetched with axios, cached, and renewed before it expires.
 * Messages never contain credentials or tokens.
 */
import type { Agent } from 'node:https';
import type { PacsAuth } from '../config/schema';
import { redactUrl } from '../http/url';
import { clientCredentialsToken, TokenRequestError } from '../oauth2/clientCredentials';
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
  const tokens = clientCredentialsToken(auth, {
    timeoutMs: opts.timeoutMs,
    httpsAgent: opts.httpsAgent,
    now: opts.now,
  });
  const where = `OAuth2 token endpoint for source "${opts.sourceId}" (${redactUrl(auth.tokenUrl)})`;
  return {
    refreshable: true,
    async header() {
      const before = tokens.tokenRequests;
      try {
        return await tokens.authorization();
      } catch (e) {
        throw asPacsError(e, where);
      } finally {
        if (tokens.tokenRequests > before) opts.onTokenRequest?.();
      }
    },
    invalidate: () => tokens.invalidate(),
  };
}

/** Refused credentials are not retried (a person must fix them); an unreachable or failing endpoint is. */
function asPacsError(e: unknown, where: string): PacsError {
  if (!(e instanceof TokenRequestError)) return new PacsError(`${where}: ${(e as Error).message}`, 0, 'network', true);
  switch (e.kind) {
    case 'refused':
      return new PacsError(`${where} ${e.message}; check clientId/clientSecret/scope`, e.status, 'auth', false);
    case 'network':
    case 'timeout':
      return new PacsError(`${where} ${e.message}`, 0, e.kind, true);
    case 'http':
      return new PacsError(`${where} ${e.message}`, e.status, 'http', e.status === 429 || e.status >= 500);
    case 'bad-response':
      return new PacsError(`${where} ${e.message}`, e.status, 'bad-response', false);
  }
}
