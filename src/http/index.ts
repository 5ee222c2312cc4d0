/**
 * The outbound HTTP policy shared by every client of the bridge (PACS, FHIR server, token endpoints):
 * one retry policy and loop, one authorizer interface, one timeout rule, one metrics hook.
 */
export { parseRetryAfter, jitteredBackoff } from './backoff';
export { retryDelay, withRetry, type RetryPolicy, type RetryHooks, type Transient } from './retry';
export { createAuthorizer, withTokenErrors, authorizedRequest, type Authorizer, type HttpAuth } from './auth';
export { clientCredentialsSchema, clientCredentialsToken, TokenRequestError, type ClientCredentials } from './oauth2';
export { withDeadline, DeadlineError } from './timeout';
export { observed, type RequestObserver, type OutboundMetrics } from './observe';
export { httpUrl, isHttpUrl, redactUrl } from './url';
