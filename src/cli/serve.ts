/**
 * `serve`: the scheduled sync and the HTTP API (FHIR lookups, health, metrics, status) in one
 * process, sharing one PACS client per source. SIGTERM stops the schedules, lets the study batch in
 * hand finish and checkpoint, closes the HTTP server and the store, and exits 0.
 */
import { Command } from 'commander';
import type { Server } from 'node:http';
import {
  adminAuth,
  createApiApp,
  createAuthenticator,
  createOpsRouter,
  createStudyLookup,
  startApiServer,
  type ApiSource,
} from '../api';
import { loadConfig, type BridgeConfig } from '../config';
import type { Logger } from '../log';
import { createMetrics } from '../metrics';
import type { StateStore } from '../state';
import { createSyncService } from '../sync';
import { buildSinks, loggerFor, openConfiguredStore, prepareValidation, warnBuiltInPatientSystem } from './runtime';

export function serveCommand(): Command {
  return new Command('serve')
    .description(
      'Run the scheduled sync of every source and serve the HTTP API (/fhir, /healthz, /readyz, /metrics, /status)',
    )
    .option('--no-sync', 'serve the API only; do not schedule syncs')
    .option('--port <port>', 'override api.port', (v) => Number(v))
    .action(async (opts: { sync: boolean; port?: number }) => {
      const config = loadConfig();
      const validateResources = prepareValidation(config); // missing profiles: exit 78 before anything connects
      const logger = loggerFor(config);
      warnBuiltInPatientSystem(config, logger);
      const store = await openConfiguredStore(config);
      const parts = await buildParts(config, store, logger, validateResources);
      const port = opts.port ?? config.api.port;
      const server: Server = await startApiServer(parts.app, { host: config.api.host, port });
      const address = server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      if (opts.sync) parts.service.start();
      logger.info(
        { host: config.api.host, port: actualPort, sync: opts.sync, sources: parts.service.sourceIds },
        'pacs-fhir-bridge serving',
      );
      stopOnSignals(logger, async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await parts.service.stop();
        parts.lookup.close();
        await store.close();
      });
    });
}

/** The sync service and the HTTP app over one store, sharing one PACS client per source and one metrics. */
async function buildParts(config: BridgeConfig, store: StateStore, logger: Logger, validateResources: boolean) {
  // The one metrics instance of the process: every recorder gets it, /metrics serves it.
  const metrics = createMetrics({ defaultMetrics: true });
  const { sinks, fhirSinks } = buildSinks(config, store, logger, metrics);
  // A FHIR server that is not FHIR 4.0.x with transactions is a configuration error: stop now.
  for (const fhir of fhirSinks) await fhir.check();
  const service = createSyncService({
    config: { sources: config.sources, sync: config.sync },
    store,
    sinks,
    logger,
    validateResources,
    metrics,
  });
  const sources: ApiSource[] = config.sources.map((cfg) => ({ config: cfg, pacs: service.source(cfg.id) }));
  // One lookup for the FHIR API and the cache metrics.
  const lookup = createStudyLookup({ config: config.api, sources, store: store.resources, logger });
  const app = createApiApp({ config: config.api, lookup, logger });
  app.use(
    createOpsRouter({
      store,
      sources: sources.map((s) => s.pacs),
      fhirSinks,
      caches: lookup.caches(),
      auth: adminAuth(createAuthenticator(config.api.auth)),
      metrics,
      sweepSettings: (id) => (service.sourceIds.includes(id) ? service.settings(id).sweep : undefined),
      logger,
    }),
  );
  return { service, lookup, app };
}

/**
 * SIGTERM or SIGINT: `stop` (finish the batch in hand, close the server and the store), then exit 0. A failed
 * shutdown must still end the process, with a non-zero status, not an unhandled rejection.
 */
function stopOnSignals(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing the batch in hand');
    stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err: err instanceof Error ? err.message : String(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}
