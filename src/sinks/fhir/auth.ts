/**
 * Credentials for the FHIR server: none, a static bearer token, or OAuth2 client credentials
 * (RFC 6749 §4.4) with client_secret_basic or client_secret_post. OAuth2 tokens are cached until
 * shortly before they expire and fetched again on demand or after a 401.
 */
import type { FhirAuth } from './config';
import { FhirSinkError } from './errors';
import { clientCredentialsToken, TokenRequestError } from '../../oauth2/clientCredentials';

export interface TokenSource {
  /** The Authorization header value, or undefined for no auth. */
  authorization(): Promise<string | undefined>;
  /** Forget the cached token (after a 401); false when a fresh one cannot be had (static or none). */
  invalidate(): boolean;
  /** Token endpoint calls made so far. */
  readonly tokenRequests: number;
}

/** OAuth2 tokens from the shared client-credentials cache; any token failure is retryable for the sync. */
function oauth2(auth: Extract<FhirAuth, { type: 'oauth2' }>, timeoutMs: number): TokenSource {
  const tokens = clientCredentialsToken(auth, { timeoutMs });
  return {
    async authorization() {
      try {
        return await tokens.authorization();
      } catch (e) {
        if (!(e instanceof TokenRequestError) || e.kind === 'network' || e.kind === 'timeout') {
          throw new FhirSinkError(
            `OAuth2 token endpoint ${auth.tokenUrl} unreachable: ${(e as Error).message}`,
            'network',
            true,
          );
        }
        throw new FhirSinkError(
          `OAuth2 token request to ${auth.tokenUrl} failed (${e.status}): ${e.detail ?? e.message} — check sinks.fhir.auth (clientId, clientSecret, clientAuth)`,
          'auth',
          true,
          e.status,
        );
      }
    },
    invalidate() {
      tokens.invalidate();
      return true;
    },
    get tokenRequests() {
      return tokens.tokenRequests;
    },
  };
}

export function createTokenSource(auth: FhirAuth, timeoutMs = 30000): TokenSource {
  switch (auth.type) {
    case 'none':
      return { authorization: async () => undefined, invalidate: () => false, tokenRequests: 0 };
    case 'bearer':
      return { authorization: async () => `Bearer ${auth.token}`, invalidate: () => false, tokenRequests: 0 };
    case 'oauth2':
      return oauth2(auth, timeoutMs);
  }
}
