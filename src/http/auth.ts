/**
 * The one authorizer interface of every outbound client: none, HTTP Basic, a static bearer token, or
 * OAuth2 client credentials (oauth2.ts). One rule for refused credentials on both sides:
 * - the token endpoint refusing the client (400/401/403) is final: a person must fix the configuration,
 *   so it is never retried (its other failures go through the client's retry policy like any request);
 * - a 401 from the resource itself gets one more try per request with a fresh token (revoked or rotated),
 *   OAuth2 only: a static credential would be refused again.
 * Messages never contain credentials or tokens.
 */
import type { Agent } from 'node:https';
import { clientCredentialsToken, type ClientCredentials } from './oauth2';

export type HttpAuth =
  | { type: 'none' }
  | { type: 'basic'; username: string; password: string }
  | { type: 'bearer'; token: string }
  | (ClientCredentials & { type: 'oauth2' });

export interface Authorizer {
  /** The Authorization header value, or undefined for none. OAuth2: throws the token request's failure. */
  header(): Promise<string | undefined>;
  /** After a 401: forget a cached token; true when a fresh credential may be accepted (OAuth2 only). */
  refresh(): boolean;
  /** Requests made to a token endpoint so far. */
  readonly tokenRequests: number;
}

export interface AuthorizerOptions {
  /** For the token request (the one timeout rule, timeout.ts). */
  timeoutMs: number;
  httpsAgent?: Agent;
  now?: () => number;
  onTokenRequest?: () => void;
}

const fixed = (value: string | undefined): Authorizer => ({
  header: async () => value,
  refresh: () => false,
  tokenRequests: 0,
});

export function createAuthorizer(auth: HttpAuth, opts: AuthorizerOptions): Authorizer {
  switch (auth.type) {
    case 'none':
      return fixed(undefined);
    case 'basic':
      return fixed(`Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`);
    case 'bearer':
      return fixed(`Bearer ${auth.token}`);
    case 'oauth2': {
      const tokens = clientCredentialsToken(auth, opts);
      return {
        header: () => tokens.authorization(),
        refresh: () => {
          tokens.invalidate();
          return true;
        },
        get tokenRequests() {
          return tokens.tokenRequests;
        },
      };
    }
  }
}

/** The same authorizer, its header() failures (token requests) turned into the client's own error type. */
export function withTokenErrors(auth: Authorizer, asClientError: (error: unknown) => Error): Authorizer {
  return {
    header: () => auth.header().catch((e: unknown) => Promise.reject(asClientError(e))),
    refresh: () => auth.refresh(),
    get tokenRequests() {
      return auth.tokenRequests;
    },
  };
}

/**
 * Runs a request with the Authorization header; when it fails as `unauthorized` (a 401 from the
 * resource), one more time per request with a fresh credential, if the authorizer can refresh.
 * Use one per request, across its retries.
 */
export function authorizedRequest(
  auth: Authorizer,
  unauthorized: (error: unknown) => boolean,
  onRefresh?: () => void,
): <T>(call: (authorization: string | undefined) => Promise<T>) => Promise<T> {
  let refreshed = false;
  return async (call) => {
    // A failing token request is thrown as it is: a refused client is not asked again.
    const authorization = await auth.header();
    try {
      return await call(authorization);
    } catch (e) {
      if (refreshed || !unauthorized(e) || !auth.refresh()) throw e;
      refreshed = true;
      onRefresh?.();
      return call(await auth.header());
    }
  };
}
