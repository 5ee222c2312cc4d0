/**
 * The FHIR router's middleware, in the order it runs: audit line (first, so refused requests are
 * recorded), CORS, format check (406), the failed-authentication throttle per address, authentication,
 * the per-client rate limit; and the scope check and error handler the handlers rely on.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import cors from 'cors';
import { rateLimit } from 'express-rate-limit';
import type { Logger } from '../../log';
import { writeAudit } from '../audit';
import { scopeAllows, type Authenticator, type Principal } from '../auth';
import type { ApiConfig } from '../config';
import { locals, queryPairs, sendFhir } from './http';
import { FhirError, outcome, outcomeOf } from './outcome';

/** Media types this server answers in; `_format` may also say `json`. Anything else (XML, Turtle) is a 406. */
const JSON_TYPES = ['application/fhir+json', 'application/json', 'application/json+fhir'];

/** 406 unless the client accepts JSON, by `_format` (which overrides Accept, as FHIR says) or by Accept. */
function checkFormat(req: Request): void {
  const format = queryPairs(req).find(([n]) => n === '_format')?.[1];
  const ok =
    format !== undefined
      ? format === 'json' || JSON_TYPES.includes(format.split(';')[0].trim().toLowerCase())
      : !req.get('accept') || req.accepts(JSON_TYPES) !== false;
  if (!ok)
    throw new FhirError(
      406,
      'not-supported',
      `This server answers in FHIR JSON only (${JSON_TYPES[0]}); ${format !== undefined ? `_format=${format.slice(0, 40)}` : 'the Accept header'} asks for something else.`,
      format !== undefined ? '_format' : undefined,
    );
}

/** Headers a browser client may read (CORS hides all others). */
const EXPOSED_HEADERS = [
  'ETag',
  'Location',
  'Content-Location',
  'Retry-After',
  'WWW-Authenticate',
  'RateLimit',
  'RateLimit-Policy',
];

/** One audit line per request, written when the answer has gone out. */
export function auditTrail(trail: Logger | undefined): RequestHandler {
  return (req, res, next) => {
    locals(res).audit = { interaction: 'other', params: [] };
    if (!trail) return next();
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const a = locals(res).audit;
      writeAudit(trail, {
        client: locals(res).principal?.client ?? 'anonymous',
        address: req.ip ?? req.socket.remoteAddress ?? 'unknown',
        method: req.method,
        ...a,
        status: res.statusCode,
        ms: Number((process.hrtime.bigint() - started) / 1_000_000n),
      });
    });
    next();
  };
}

export function corsFor(cfg: ApiConfig['cors']): RequestHandler {
  return cors({
    origin: cfg.origins.includes('*') ? '*' : cfg.origins,
    methods: ['GET', 'HEAD', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'X-API-Key', 'Prefer', 'Content-Type', 'Accept', 'If-None-Match'],
    exposedHeaders: EXPOSED_HEADERS,
  });
}

export const formatCheck: RequestHandler = (req, _res, next) => {
  checkFormat(req);
  next();
};

/** Guessing credentials costs a turn per address: counted before any check, forgiven when it succeeds. */
export function authFailureLimit(cfg: ApiConfig['rateLimit']): RequestHandler {
  return rateLimit({
    windowMs: cfg.windowSeconds * 1000,
    limit: cfg.maxAuthFailures,
    standardHeaders: false,
    legacyHeaders: false,
    keyGenerator: (req) => `auth-failures:${req.ip}`,
    skipSuccessfulRequests: true,
    requestWasSuccessful: (_req, res) => res.statusCode !== 401,
    handler: (req, res) => {
      const reset = (req as Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const seconds = reset ? Math.max(1, Math.ceil((reset.getTime() - Date.now()) / 1000)) : cfg.windowSeconds;
      res.setHeader('Retry-After', String(seconds));
      sendFhir(res, 429, outcome('error', 'throttled', 'Too many failed authentication attempts; retry later.'));
    },
    validate: false,
  });
}

const ANONYMOUS: Principal = Object.freeze({
  client: 'anonymous',
  scopes: Object.freeze(['system/*.read']) as string[],
});

/** Sets `locals.principal`; without access control every client is the anonymous one. */
export function authentication(authenticate: Authenticator | undefined): RequestHandler {
  return (req, res, next) => {
    if (!authenticate) {
      locals(res).principal = ANONYMOUS;
      return next();
    }
    authenticate(req.headers as never).then((principal) => {
      locals(res).principal = principal;
      next();
    }, next);
  };
}

/** Per client when clients authenticate; per address when access control is off. */
export function clientLimit(cfg: ApiConfig['rateLimit'], perClient: boolean): RequestHandler {
  return rateLimit({
    windowMs: cfg.windowSeconds * 1000,
    limit: cfg.max,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    keyGenerator: (req, res) => (perClient ? `client:${locals(res).principal!.client}` : `ip:${req.ip}`),
    handler: (_req, res) =>
      sendFhir(res, 429, outcome('error', 'throttled', 'Too many requests; slow down and retry later.')),
    validate: false,
  });
}

/** 403 unless the client's scopes allow this; patient context is refused (see scopeAllows). */
export function requireScope(res: Response, resourceType: string, interaction: 'read' | 'search'): void {
  const p = locals(res).principal!;
  if (scopeAllows(p.scopes, resourceType, interaction, p.patient !== undefined)) return;
  if (p.patient !== undefined && scopeAllows(p.scopes, resourceType, interaction))
    throw new FhirError(
      403,
      'forbidden',
      'This token carries a patient context (a "patient" claim); this server does not confine answers to one patient, so user/ and patient/ scopes with a patient context are refused. Use a token without a patient context or with system/ scopes.',
    );
  throw new FhirError(
    403,
    'forbidden',
    `This client's scopes do not allow ${interaction} of ${resourceType} (needs e.g. system/${resourceType}.read).`,
  );
}

/** 405 for writes to served types, 404 for anything else. */
export const notServed: RequestHandler = (req, _res, next) => {
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
};

/** Every failure as an OperationOutcome; nothing about the PACS or the credential in it. */
export function errorHandler(log: Logger) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
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
  };
}
