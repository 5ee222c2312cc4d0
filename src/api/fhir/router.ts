/**
 * The FHIR R4 router: metadata, ImagingStudy and Endpoint read and search, behind CORS, access
 * control and per-client rate limits, with an audit line per request. Mount it anywhere (the app
 * mounts it at /fhir); everything it needs comes in through `FhirDeps`.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import cors from 'cors';
import { rateLimit } from 'express-rate-limit';
import type { Resource } from 'fhir/r4';
import type { Logger } from '../../log';
import { silentLogger } from '../../log';
import { writeAudit, type AuditRecord } from '../audit';
import { createAuthenticator, scopeAllows, type Principal } from '../auth';
import type { ApiConfig } from '../config';
import { searchBundle } from './bundle';
import { capabilityStatement } from './capability';
import { decodeCursor, previousCursor } from './cursor';
import { FhirError, outcome, outcomeOf } from './outcome';
import {
  ENDPOINT_PARAMS,
  IMAGING_STUDY_PARAMS,
  isRestricted,
  parseEndpointId,
  RESULT_PARAMS,
  parseEndpointSearch,
  parseImagingStudySearch,
  parseStudyId,
  wantsStrict,
  type ParseOptions,
} from './params';
import { StudyService, type ApiSource, type StudyStore } from './studies';

export interface FhirDeps {
  config: ApiConfig;
  /** Every configured PACS source with its source-layer client. */
  sources: ApiSource[];
  /** The embedded store, needed in store mode. */
  store?: StudyStore;
  logger?: Logger;
  /** Audit trail destination (see createAuditLogger); no audit lines when absent. */
  audit?: Logger;
  version?: string;
}

export type FhirRouter = Router & { service: StudyService };

const FHIR_JSON = 'application/fhir+json; charset=utf-8';

interface Locals {
  principal?: Principal;
  audit: Omit<AuditRecord, 'status' | 'ms' | 'client' | 'method'>;
}

const locals = (res: Response) => res.locals as Locals;

function sendFhir(res: Response, status: number, body: Resource | string | Buffer): void {
  res
    .status(status)
    .type(FHIR_JSON)
    .send(typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
}

const KNOWN_NAMES = new Set([
  ...[...IMAGING_STUDY_PARAMS, ...RESULT_PARAMS, ...ENDPOINT_PARAMS].flatMap((p) => [
    p.name,
    ...(p.modifiers ?? []).map((m) => `${p.name}:${m}`),
    ...(p.chains ?? []).map((c) => `${p.name}.${c}`),
  ]),
  '_include',
]);

/** Parameter names for the audit line: a client could put anything in a name, so unknown ones are not written. */
function auditNames(pairs: [string, string][]): string[] {
  return [...new Set(pairs.map(([n]) => (KNOWN_NAMES.has(n) ? n : '(unknown)')))];
}

/** Query pairs exactly as sent (order kept, repeats kept), from the raw URL. */
function queryPairs(req: Request): [string, string][] {
  const q = req.originalUrl.indexOf('?');
  if (q < 0) return [];
  return [...new URLSearchParams(req.originalUrl.slice(q + 1)).entries()];
}

export function createFhirRouter(deps: FhirDeps): FhirRouter {
  const cfg = deps.config;
  const log = deps.logger ?? silentLogger;
  const service = new StudyService(cfg, deps.sources, deps.store, log);
  const authenticate = createAuthenticator(cfg.auth);
  const version = deps.version ?? '0.1.0';
  const router = express.Router() as FhirRouter;
  router.service = service;

  if (cfg.auth.type === 'apiKey' && cfg.auth.keys.length === 0)
    log.warn('api.auth is apiKey with no keys configured: every FHIR request will be refused');
  if (cfg.auth.type === 'none') log.warn('api.auth is "none": the FHIR API is open to anyone who can reach it');

  const parseOptions = (req: Request): ParseOptions => ({
    defaultCount: cfg.defaultCount,
    maxCount: cfg.maxCount,
    maxValueLength: cfg.maxValueLength,
    strict: wantsStrict(req.get('prefer')),
    patientIdRule: cfg.patientIdRule,
  });
  const baseOf = (req: Request) =>
    (cfg.baseUrl ?? `${req.protocol}://${req.get('host')}${req.baseUrl}`).replace(/\/+$/, '');

  // Audit first, so refused requests are recorded too.
  router.use((req, res, next) => {
    locals(res).audit = { interaction: 'other', params: [] };
    const trail = deps.audit;
    if (!trail) return next();
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const a = locals(res).audit;
      writeAudit(trail, {
        client: locals(res).principal?.client ?? 'anonymous',
        method: req.method,
        ...a,
        status: res.statusCode,
        ms: Number((process.hrtime.bigint() - started) / 1_000_000n),
      });
    });
    next();
  });

  if (cfg.cors.enabled) {
    const any = cfg.cors.origins.includes('*');
    router.use(
      cors({
        origin: any ? '*' : cfg.cors.origins,
        methods: ['GET', 'HEAD', 'OPTIONS'],
        allowedHeaders: ['Authorization', 'X-API-Key', 'Prefer', 'Content-Type', 'Accept'],
      }),
    );
  }

  router.get('/metadata', (req, res) => {
    locals(res).audit.interaction = 'capabilities';
    sendFhir(res, 200, capabilityStatement(cfg, baseOf(req), version));
  });

  // Access control: every route below needs an authenticated client.
  const anonymous: Principal = Object.freeze({
    client: 'anonymous',
    scopes: Object.freeze(['system/*.read']) as string[],
  });
  router.use((req, res, next) => {
    if (!authenticate) {
      locals(res).principal = anonymous;
      return next();
    }
    authenticate(req.headers as never).then((principal) => {
      locals(res).principal = principal;
      next();
    }, next);
  });

  if (cfg.rateLimit.enabled) {
    router.use(
      rateLimit({
        windowMs: cfg.rateLimit.windowSeconds * 1000,
        limit: cfg.rateLimit.max,
        standardHeaders: 'draft-7',
        legacyHeaders: false,
        // Per client when clients authenticate; per address when access control is off.
        keyGenerator: (req, res) => (authenticate ? `client:${locals(res).principal!.client}` : `ip:${req.ip}`),
        handler: (_req, res) =>
          sendFhir(res, 429, outcome('error', 'throttled', 'Too many requests; slow down and retry later.')),
        validate: false,
      }),
    );
  }

  const requireScope = (res: Response, resourceType: string, interaction: 'read' | 'search') => {
    const p = locals(res).principal!;
    if (!scopeAllows(p.scopes, resourceType, interaction)) {
      throw new FhirError(
        403,
        'forbidden',
        `This client's scopes do not allow ${interaction} of ${resourceType} (needs e.g. system/${resourceType}.read).`,
      );
    }
  };

  /** A search's common start: audit what is asked (parameter names only) and check the scope. */
  const auditSearch = (res: Response, resourceType: 'ImagingStudy' | 'Endpoint', params: string[]): void => {
    Object.assign(locals(res).audit, { interaction: 'search-type', resourceType, params });
    requireScope(res, resourceType, 'search');
  };
  const startSearch = (req: Request, res: Response, resourceType: 'ImagingStudy' | 'Endpoint'): [string, string][] => {
    const pairs = queryPairs(req);
    auditSearch(res, resourceType, auditNames(pairs));
    return pairs;
  };

  router.get('/ImagingStudy/:id', async (req, res) => {
    const a = locals(res).audit;
    Object.assign(a, { interaction: 'read', resourceType: 'ImagingStudy' });
    requireScope(res, 'ImagingStudy', 'read');
    const uid = parseStudyId(req.params.id as string);
    a.id = uid;
    const found = await service.read(uid);
    if (!found) throw new FhirError(404, 'not-found', `ImagingStudy/${uid} is not known.`);
    a.count = 1;
    sendFhir(res, 200, found.resource);
  });

  router.get('/ImagingStudy', async (req, res) => {
    const a = locals(res).audit;
    // What the answer depends on besides the data: the URL, the base it links to, strict handling.
    const renderedKey = `${baseOf(req)}|${wantsStrict(req.get('prefer'))}|${req.originalUrl}`;
    const hit = service.rendered?.lookup(renderedKey);
    if (hit) {
      auditSearch(res, 'ImagingStudy', hit.params);
      if (hit.includeEndpoint) requireScope(res, 'Endpoint', 'read');
      a.count = hit.count;
      sendFhir(res, 200, hit.body);
      return;
    }
    const parsed = parseImagingStudySearch(startSearch(req, res, 'ImagingStudy'), parseOptions(req));
    if (parsed.includeEndpoint) requireScope(res, 'Endpoint', 'read');
    const restricted = isRestricted(parsed.criteria);
    if (!restricted && !cfg.allowUnrestrictedSearch) {
      throw new FhirError(
        400,
        'too-costly',
        'A search needs at least one restricting parameter (_id, identifier, patient, subject, started or series); this server does not list the whole PACS.',
      );
    }
    const base = baseOf(req);
    if (parsed.summaryCount) {
      const total = await service.count(parsed.criteria);
      a.count = total;
      sendFhir(
        res,
        200,
        searchBundle({
          base,
          resourceType: 'ImagingStudy',
          used: parsed.used,
          count: parsed.count,
          matches: [],
          total,
        }),
      );
      return;
    }
    const cursor = decodeCursor(parsed.cursor, service.sourceCount);
    const page = await service.search({ criteria: parsed.criteria, count: parsed.count, cursor });
    const includes = parsed.includeEndpoint
      ? [...new Set(page.studies.map((s) => s.sourceId))].flatMap((id) => service.endpointOf(id) ?? [])
      : [];
    a.count = page.studies.length;
    const body = JSON.stringify(
      searchBundle({
        base,
        resourceType: 'ImagingStudy',
        used: parsed.used,
        count: parsed.count,
        cursor,
        next: page.next,
        previous: previousCursor(cursor, parsed.count),
        matches: page.studies.map((s) => s.resource),
        includes,
        problems: page.problems,
      }),
    );
    service.rendered?.set(renderedKey, {
      body: Buffer.from(body),
      params: a.params,
      count: a.count,
      includeEndpoint: parsed.includeEndpoint,
    });
    sendFhir(res, 200, body);
  });

  router.get('/Endpoint/:id', async (req, res) => {
    const a = locals(res).audit;
    Object.assign(a, { interaction: 'read', resourceType: 'Endpoint' });
    requireScope(res, 'Endpoint', 'read');
    const id = parseEndpointId(req.params.id as string);
    a.id = id;
    const endpoint = service.endpoint(id);
    if (!endpoint) throw new FhirError(404, 'not-found', `Endpoint/${id} is not known.`);
    a.count = 1;
    sendFhir(res, 200, endpoint);
  });

  router.get('/Endpoint', async (req, res) => {
    const a = locals(res).audit;
    const parsed = parseEndpointSearch(startSearch(req, res, 'Endpoint'), parseOptions(req));
    const all = service.endpoints().filter((e) => !parsed.ids || parsed.ids.includes(e.id!));
    a.count = all.length;
    const base = baseOf(req);
    if (parsed.summaryCount) {
      sendFhir(
        res,
        200,
        searchBundle({
          base,
          resourceType: 'Endpoint',
          used: parsed.used,
          count: parsed.count,
          matches: [],
          total: all.length,
        }),
      );
      return;
    }
    // Endpoints are one per source: a page always holds them all unless _count is smaller.
    sendFhir(
      res,
      200,
      searchBundle({
        base,
        resourceType: 'Endpoint',
        used: parsed.used,
        count: parsed.count,
        matches: all.slice(0, parsed.count),
        total: all.length,
      }),
    );
  });

  router.all('/{*rest}', (req, _res, next) => {
    const type = req.path.split('/')[1] ?? '';
    if (req.method !== 'GET' && req.method !== 'HEAD' && ['ImagingStudy', 'Endpoint', 'metadata'].includes(type)) {
      next(
        new FhirError(405, 'not-supported', `${req.method} is not supported; this server is read-only.`, undefined, {
          Allow: 'GET',
        }),
      );
      return;
    }
    next(new FhirError(404, 'not-supported', `This server serves ImagingStudy and Endpoint only.`));
  });

  router.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof FhirError) {
      for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
      if (err.status >= 500) log.warn({ status: err.status, code: err.code }, 'FHIR request failed');
      sendFhir(res, err.status, outcomeOf(err));
      return;
    }
    const e = err as { type?: string; status?: number; name?: string };
    if (e?.status && e.status >= 400 && e.status < 500) {
      sendFhir(res, e.status, outcome('error', 'invalid', 'The request could not be read.'));
      return;
    }
    log.error({ err: { name: e?.name, type: e?.type } }, 'unexpected error in the FHIR API');
    sendFhir(res, 500, outcome('error', 'exception', 'Internal error.'));
  });

  return router;
}
