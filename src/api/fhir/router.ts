/**
 * The FHIR R4 router: metadata, ImagingStudy and Endpoint read and search, behind CORS, access
 * control and rate limits, with an audit line per request. Mount it anywhere (the app mounts it at
 * /fhir); the study lookup and everything else come in through `FhirDeps`.
 */
import express, { type Router } from 'express';
import type { Logger } from '../../log';
import { silentLogger } from '../../log';
import { createAuthenticator } from '../auth';
import type { ApiConfig } from '../config';
import { createFhirHandlers } from './handlers';
import {
  auditTrail,
  authentication,
  authFailureLimit,
  clientLimit,
  corsFor,
  errorHandler,
  formatCheck,
  notServed,
} from './middleware';
import type { StudyLookup } from './studies';

export { queryPairs } from './http';

export interface FhirDeps {
  config: ApiConfig;
  /** Where studies and Endpoints come from (createStudyLookup), built once by the caller. */
  lookup: StudyLookup;
  logger?: Logger;
  /** Audit trail destination (see createAuditLogger); no audit lines when absent. */
  audit?: Logger;
  version?: string;
}

export function createFhirRouter(deps: FhirDeps): Router {
  const cfg = deps.config;
  const log = deps.logger ?? silentLogger;
  const authenticate = createAuthenticator(cfg.auth);
  const h = createFhirHandlers({ config: cfg, lookup: deps.lookup, version: deps.version ?? '0.1.0' });
  const router = express.Router();

  if (cfg.auth.type === 'apiKey' && cfg.auth.keys.length === 0)
    log.warn('api.auth is apiKey with no keys configured: every FHIR request will be refused');
  if (cfg.auth.type === 'none') log.warn('api.auth is "none": the FHIR API is open to anyone who can reach it');

  router.use(auditTrail(deps.audit));
  if (cfg.cors.enabled) router.use(corsFor(cfg.cors));
  router.use(formatCheck);
  router.get('/metadata', h.capabilities);
  // Every route below needs an authenticated client.
  if (authenticate && cfg.rateLimit.enabled) router.use(authFailureLimit(cfg.rateLimit));
  router.use(authentication(authenticate));
  if (cfg.rateLimit.enabled) router.use(clientLimit(cfg.rateLimit, !!authenticate));

  router.get('/ImagingStudy/:id', h.readImagingStudy);
  router.get('/ImagingStudy', h.searchImagingStudies);
  router.get('/Endpoint/:id', h.readEndpoint);
  router.get('/Endpoint', h.searchEndpoints);
  router.all('/{*rest}', notServed);
  router.use(errorHandler(log));
  return router;
}
