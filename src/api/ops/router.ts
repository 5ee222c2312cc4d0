/**
 * Operations endpoints: /healthz (liveness), /readyz (per-dependency readiness), /metrics (Prometheus)
 * and /status (HTML page with a protected replay of dead letters). Mount at the app's root.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import type { Logger } from 'pino';
import type { PacsSource } from '../../dicomweb';
import { silentLogger } from '../../log';
import type { BridgeMetrics, CacheStatsSource, FhirSinkStatsSource } from '../../metrics';
import type { StateStore } from '../../state';
import {
  checkReadiness,
  fhirCheck,
  pacsCheck,
  storeCheck,
  type FhirServerTarget,
  type Readiness,
  type ReadinessCheck,
} from './health';
import { buildStatusModel, renderStatusPage, STATUS_PAGE_CSP, type CoverageSettingsOf } from './statusPage';
import { sourceCoverage } from '../../sync';

/** What the ops endpoints use of the embedded store. */
export type OpsStore = Pick<StateStore, 'studies' | 'runs' | 'checkpoints' | 'sweeps' | 'feed' | 'ping'>;

export interface OpsDeps {
  store: OpsStore;
  sources: Pick<PacsSource, 'id' | 'stats' | 'searchStudies'>[];
  /** FHIR-server sinks (src/sinks/fhir's FhirSink): checked by /readyz; their stats() feed /metrics. */
  fhirSinks?: (FhirServerTarget & Partial<FhirSinkStatsSource>)[];
  /**
   * Admits administrators only, answering 401/403 itself otherwise: `adminAuth(createAuthenticator(api.auth))`.
   * The replay form's credential is presented to it as X-API-Key and as a Bearer token.
   */
  auth: RequestHandler;
  /** Served at /metrics; the router adds the store, sources, sinks and caches to what it observes. */
  metrics: BridgeMetrics;
  /** Caches whose node-cache statistics give the hit ratio. */
  caches?: Record<string, CacheStatsSource>;
  /** Per dependency, for /readyz. */
  readinessTimeoutMs?: number;
  /** Runs shown per source on /status. */
  runsShown?: number;
  /** Each source's sweep limits (sync.sweep maxAgeHours, minCoverage), for the coverage verdict. */
  sweepSettings?: CoverageSettingsOf;
  logger?: Logger;
  now?: () => Date;
}

const UID = /^[0-9]+(\.[0-9]+)*$/;

/** A per-process secret; the replay form's token is its HMAC, so it needs no server-side session. */
function csrfTokens() {
  const secret = randomBytes(32);
  const token = createHmac('sha256', secret).update('status-replay').digest('base64url');
  return {
    token,
    valid(candidate: unknown): boolean {
      if (typeof candidate !== 'string' || candidate.length !== token.length) return false;
      return timingSafeEqual(Buffer.from(candidate), Buffer.from(token));
    },
  };
}

/** A browser's Origin (or Referer) must name this host: forms posted from other sites are refused. */
function sameOrigin(req: Request): boolean {
  const origin = req.get('origin') ?? req.get('referer');
  if (!origin || origin === 'null') return origin === undefined;
  try {
    return new URL(origin).host === req.get('host');
  } catch {
    return false;
  }
}

/** What the handlers share: the deps plus what createOpsRouter derives from them once. */
interface OpsContext {
  deps: OpsDeps;
  log: Logger;
  now: () => Date;
  csrf: ReturnType<typeof csrfTokens>;
  settingsOf: CoverageSettingsOf;
  /** One round of readiness checks, shared by the probes arriving during it. */
  readiness: () => Promise<Readiness>;
  /** The sources configured or known to the store, sorted. */
  sourceIds: () => Promise<string[]>;
}

export function createOpsRouter(deps: OpsDeps): Router {
  const ctx = opsContext(deps);
  observeForMetrics(ctx);
  const router = express.Router();
  router.get('/healthz', noStore, (_req, res) => {
    res.json({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) });
  });
  router.get(
    '/readyz',
    noStore,
    handled((_req, res) => sendReadiness(ctx, res)),
  );
  router.get(
    '/metrics',
    noStore,
    handled(async (_req, res) => {
      const { contentType, body } = await deps.metrics.scrape();
      res.type(contentType).send(body);
    }),
  );
  router.get(
    '/status',
    noStore,
    handled(async (req, res) => {
      if (req.path.endsWith('/')) res.redirect(301, req.originalUrl.replace(/\/+(\?|$)/, '$1'));
      else await sendStatus(ctx, req, res);
    }),
  );
  router.post(
    '/status/replay',
    express.urlencoded({ extended: false, limit: '4kb' }),
    express.json({ limit: '4kb' }),
    csrfGuard(ctx.csrf),
    deps.auth,
    handled((req, res) => replay(ctx, req, res)),
  );
  return router;
}

function opsContext(deps: OpsDeps): OpsContext {
  const timeoutMs = deps.readinessTimeoutMs ?? 5000;
  const checks: ReadinessCheck[] = [
    storeCheck(deps.store),
    ...deps.sources.map(pacsCheck),
    ...(deps.fhirSinks ?? []).map((t) => fhirCheck(t, timeoutMs)),
  ];
  // Probes arriving together share one round of checks rather than multiplying PACS queries.
  let inFlight: Promise<Readiness> | undefined;
  return {
    deps,
    log: deps.logger ?? silentLogger,
    now: deps.now ?? (() => new Date()),
    csrf: csrfTokens(),
    settingsOf: deps.sweepSettings ?? (() => undefined),
    readiness: () => (inFlight ??= checkReadiness(checks, timeoutMs).finally(() => (inFlight = undefined))),
    sourceIds: async () => {
      const ids = new Set(deps.sources.map((s) => s.id));
      (await deps.store.studies.knownSources()).forEach((id) => ids.add(id));
      return [...ids].sort();
    },
  };
}

/** Hands the store, sources, sinks and caches to the metrics, read at scrape time. */
function observeForMetrics({ deps, settingsOf }: OpsContext): void {
  deps.metrics.observe({
    store: deps.store,
    coverage: (sourceId, at) => sourceCoverage(deps.store, sourceId, at, settingsOf(sourceId)),
    sources: deps.sources,
    caches: deps.caches,
    fhirSinks: (deps.fhirSinks ?? []).filter(
      (f): f is FhirServerTarget & FhirSinkStatsSource => typeof f.stats === 'function',
    ),
  });
}

function noStore(_req: Request, res: Response, next: NextFunction): void {
  res.set('Cache-Control', 'no-store');
  next();
}

/** An async handler whose failure goes to Express's error handler. */
function handled(fn: (req: Request, res: Response) => Promise<void>): RequestHandler {
  return async (req, res, next) => {
    try {
      await fn(req, res);
    } catch (err) {
      next(err);
    }
  };
}

async function sendReadiness(ctx: OpsContext, res: Response): Promise<void> {
  const r = await ctx.readiness();
  if (!r.ready)
    ctx.log.warn({ failing: r.dependencies.filter((d) => !d.ok).map((d) => `${d.kind}:${d.name}`) }, 'not ready');
  const coverage = await coverageBeside(ctx);
  res.status(r.ready ? 200 : 503).json({ status: r.ready ? 'ready' : 'not ready', ...r, coverage });
}

/**
 * Coverage is reported beside readiness, not part of it: an overdue sweep is for operators to act on,
 * and taking the lookup API out of service would not bring the sweep back.
 */
async function coverageBeside(
  ctx: OpsContext,
): Promise<{ source: string; healthy: boolean; health: string; problems: string[] }[]> {
  try {
    return await Promise.all(
      (await ctx.sourceIds()).map(async (id) => {
        const c = await sourceCoverage(ctx.deps.store, id, ctx.now(), ctx.settingsOf(id));
        return { source: id, healthy: c.health === 'ok', health: c.health, problems: c.problems };
      }),
    );
  } catch {
    return []; // an unreadable store is already reported by its readiness check
  }
}

/** The notice shown after a replay redirected back to /status (?replayed=n&source=id). */
function replayFlash(req: Request, known: string[]): { ok: boolean; text: string } | undefined {
  const replayed = Number(req.query.replayed);
  const source =
    typeof req.query.source === 'string' && known.includes(req.query.source) ? req.query.source : undefined;
  if (!(Number.isInteger(replayed) && replayed >= 0 && source)) return undefined;
  return {
    ok: true,
    text: `Re-queued ${replayed} dead letter${replayed === 1 ? '' : 's'} of ${source}; ${replayed === 1 ? 'it syncs' : 'they sync'} on the next run.`,
  };
}

async function sendStatus(ctx: OpsContext, req: Request, res: Response): Promise<void> {
  const known = await ctx.sourceIds();
  const flash = replayFlash(req, known);
  const model = await buildStatusModel(ctx.deps.store, known, ctx.now(), ctx.deps.runsShown ?? 20, ctx.settingsOf);
  if (req.query.format === 'json' || req.accepts(['html', 'json']) === 'json') {
    res.json(model);
    return;
  }
  res
    .set('Content-Security-Policy', STATUS_PAGE_CSP)
    .set('X-Content-Type-Options', 'nosniff')
    .set('Referrer-Policy', 'same-origin')
    .type('html')
    .send(renderStatusPage(model, ctx.csrf.token, flash));
}

function refuse(res: Response, status: number, text: string): void {
  res
    .status(status)
    .set('Content-Security-Policy', STATUS_PAGE_CSP)
    .type('html')
    .send(
      `<!doctype html><meta charset="utf-8"><title>Replay refused</title><p>${text}</p><p><a href="../status">Back to the status page</a></p>`,
    );
}

/**
 * A credential sent in a header cannot come from a cross-site form; one typed into the form must
 * come with the page's token and from this origin.
 */
function csrfGuard(csrf: ReturnType<typeof csrfTokens>): RequestHandler {
  return (req, res, next) => {
    // Browsers never attach these on their own (unlike cookies or Basic credentials).
    const headerCredential = Boolean(req.get('x-api-key') || /^Bearer\s/i.test(req.get('authorization') ?? ''));
    if (!headerCredential && (!csrf.valid(req.body?.csrf) || !sameOrigin(req))) {
      refuse(res, 403, 'This form is out of date or was sent from another site. Reload the status page and try again.');
      return;
    }
    const typed = typeof req.body?.apiKey === 'string' ? req.body.apiKey.trim() : '';
    if (!headerCredential && typed) {
      req.headers['x-api-key'] = typed;
      req.headers.authorization = `Bearer ${typed}`;
    }
    // The typed credential must not travel further (logs, error pages).
    if (req.body && 'apiKey' in req.body) delete req.body.apiKey;
    next();
  };
}

async function replay(ctx: OpsContext, req: Request, res: Response): Promise<void> {
  const source = String(req.body?.source ?? '');
  const study = req.body?.study === undefined || req.body.study === '' ? undefined : String(req.body.study);
  if (!(await ctx.sourceIds()).includes(source)) return refuse(res, 400, 'Unknown source.');
  if (study !== undefined && (study.length > 64 || !UID.test(study)))
    return refuse(res, 400, 'Not a Study Instance UID.');
  const replayed = await ctx.deps.store.studies.replay(source, study);
  ctx.log.info({ source, studyUid: study, replayed }, 'dead letters re-queued from the status page');
  if (req.is('application/json')) {
    res.json({ source, study, replayed });
    return;
  }
  res.redirect(
    303,
    `../status?replayed=${replayed}&source=${encodeURIComponent(source)}#source-${encodeURIComponent(source)}`,
  );
}
