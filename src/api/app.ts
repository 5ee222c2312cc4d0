/**
 * The HTTP API application: the FHIR router at /fhir. The integrator adds health, metrics and status
 * routes to the same app; `startApiServer` listens where the configuration says (loopback by default).
 */
import type { Server } from 'node:http';
import express, { type Express } from 'express';
import { createAuditLogger } from './audit';
import { createFhirRouter, type FhirDeps, type FhirRouter } from './fhir/router';

export { createFhirRouter, type FhirDeps, type FhirRouter } from './fhir/router';
export type { ApiSource, StudyStore } from './fhir/studies';

export type ApiApp = Express & { fhir: FhirRouter };

/** Builds the app; the audit trail goes to `deps.audit`, else to the configured destination. */
export function createApiApp(deps: FhirDeps): ApiApp {
  const app = express() as ApiApp;
  app.disable('x-powered-by');
  // No body-hash ETag on every answer (a SHA-1 per cached search hit); FHIR searches carry none.
  app.set('etag', false);
  app.set('trust proxy', deps.config.trustProxy);
  app.set('query parser', 'simple');
  const audit =
    deps.audit ?? (deps.config.audit.enabled ? createAuditLogger(deps.config.audit.destination) : undefined);
  const fhir = createFhirRouter({ ...deps, audit });
  app.fhir = fhir;
  app.use('/fhir', fhir);
  return app;
}

/** Listens on the configured host and port; resolves once listening. */
export function startApiServer(app: Express, o: { host: string; port: number }): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(o.port, o.host, (err?: Error) => (err ? reject(err) : resolve(server)));
    server.once('error', reject);
  });
}
