/**
 * Credentials for the FHIR server: an Authorizer (src/http/auth.ts: none, static bearer token, or
 * OAuth2 client credentials with client_secret_basic or client_secret_post) whose token failures are
 * FhirSinkErrors. A refused client is final within the request (kind `auth`); the sync still counts the
 * study as retryable, as for a 401 from the server itself. Other token failures follow the FHIR policy.
 */
import { createAuthorizer, withTokenErrors, type Authorizer, TokenRequestError, redactUrl } from '../../http';
import type { FhirAuth } from './config';
import { FhirSinkError } from './errors';

export function createFhirAuthorizer(auth: FhirAuth, timeoutMs = 30000): Authorizer {
  const inner = createAuthorizer(auth, { timeoutMs });
  if (auth.type !== 'oauth2') return inner;
  const tokenUrl = redactUrl(auth.tokenUrl);
  return withTokenErrors(inner, (e) => {
    if (!(e instanceof TokenRequestError) || e.kind === 'network' || e.kind === 'timeout') {
      return new FhirSinkError(
        `OAuth2 token endpoint ${tokenUrl} unreachable: ${(e as Error).message}`,
        'network',
        true,
      );
    }
    return new FhirSinkError(
      `OAuth2 token request to ${tokenUrl} failed (${e.status}): ${e.detail ?? e.message} — check sinks.fhir.auth (clientId, clientSecret, clientAuth)`,
      e.kind === 'http' ? 'http' : 'auth',
      true,
      e.status,
    );
  });
}
