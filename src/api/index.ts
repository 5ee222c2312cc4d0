/**
 * The HTTP API's front door for the composition root (src/cli): the FHIR lookup app, its authenticator,
 * and the ops router (health, metrics, status page, admin).
 */
export * from './app';
export { createAuthenticator, type Authenticator, type Principal } from './auth';
export * from './ops';
export { formatDuration, formatInstant } from './ops/format';
