/**
 * A PACS's Authorizer (src/http/auth.ts: none, Basic, bearer, OAuth2 client credentials) whose token
 * failures are PacsErrors naming the source. Refused client credentials are final; an unreachable or
 * failing token endpoint is retried like the PACS (pacsRetryableStatus).
 */
import type { Agent } from 'node:https';
import type { PacsAuth } from '../config';
import {
  createAuthorizer as createHttpAuthorizer,
  withTokenErrors,
  type Authorizer,
  TokenRequestError,
  redactUrl,
} from '../http';
import { pacsRetryableStatus } from './retry';
import { PacsError } from './types';

export type { Authorizer } from '../http';

export interface TokenOptions {
  sourceId: string;
  timeoutMs: number;
  httpsAgent?: Agent;
  onTokenRequest?: () => void;
  now?: () => number;
}

export function createAuthorizer(auth: PacsAuth, opts: TokenOptions): Authorizer {
  const inner = createHttpAuthorizer(auth, opts);
  if (auth.type !== 'oauth2') return inner;
  const where = `OAuth2 token endpoint for source "${opts.sourceId}" (${redactUrl(auth.tokenUrl)})`;
  return withTokenErrors(inner, (e) => asPacsError(e, where));
}

function asPacsError(e: unknown, where: string): PacsError {
  if (!(e instanceof TokenRequestError)) return new PacsError(`${where}: ${(e as Error).message}`, 0, 'network', true);
  switch (e.kind) {
    case 'refused':
      return new PacsError(`${where} ${e.message}; check clientId/clientSecret/scope`, e.status, 'auth', false);
    case 'network':
    case 'timeout':
      return new PacsError(`${where} ${e.message}`, 0, e.kind, true);
    case 'http':
      return new PacsError(`${where} ${e.message}`, e.status, 'http', pacsRetryableStatus(e.status));
    case 'bad-response':
      return new PacsError(`${where} ${e.message}`, e.status, 'bad-response', false);
  }
}
