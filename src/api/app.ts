/**
 * The HTTP API application: the FHIR router at /fhir. The integrator adds health, metrics and status
 * routes to the same app; `startApiServer` listens where the configuration says (loopback by default).
 */
import { STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import express, { type Express } from 'express';
import { createAuditLogger } from './audit';
import { createFhirRouter, type FhirDeps } from './fhir/router';
import { outcome } from './fhir/outcome';

export { createFhirRouter, type FhirDeps } from './fhir/router';
export { createStudyLookup } from './fhir/lookup';
export type { ApiSource, StudyLookup, StudyStore } from './fhir/studies';

export type ApiApp = Express;

/**
 * Builds the app around the given study lookup (which the caller also hands to the ops router and
 * metrics, and closes); the audit trail goes to `deps.audit`, else to the configured destination.
 */
export function createApiApp(deps: FhirDeps): ApiApp {
  const app = express();
  app.disable('x-powered-by');
  // No body-hash ETag on every answer (a SHA-1 per cached search hit); FHIR searches carry none.
  app.set('etag', false);
  app.set('trust proxy', deps.config.trustProxy);
  app.set('query parser', 'simple');
  const audit =
    deps.audit ?? (deps.config.audit.enabled ? createAuditLogger(deps.config.audit.destination) : undefined);
  app.use('/fhir', createFhirRouter({ ...deps, audit }));
  return app;
}

/** Listens on the configured host and port; resolves once listening. */
export function startApiServer(app: Express, o: { host: string; port: number }): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(o.port, o.host, (err?: Error) => (err ? reject(err) : resolve(server)));
    answerClientErrors(server);
    server.once('error', reject);
  });
}

/**
 * Requests Node cannot parse (malformed request line, oversized headers, a header timeout) never reach
 * Express; answer them with an OperationOutcome instead of Node's bare status line.
 */
export function answerClientErrors(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const text =
      status === 431
        ? 'The request headers are too large.'
        : status === 408
          ? 'The request was not received in time.'
          : 'The request is not valid HTTP.';
    const body = JSON.stringify(outcome('error', status === 408 ? 'timeout' : 'invalid', text));
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/fhir+json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}
