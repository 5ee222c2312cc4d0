/**
 * The one module that sends DICOMweb requests: each through the outbound HTTP policy (src/http: retry
 * policy and loop, authorizer, timeout, metrics hook) and dicomweb-client (xhrAdapter.ts), under the
 * source's concurrency limit; what went wrong becomes a PacsError saying whether to retry.
 */
import fs from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import pLimit from 'p-limit';
import type { SourceConfig } from '../config';
import {
  authorizedRequest,
  type Authorizer,
  parseRetryAfter,
  observed,
  type RequestObserver,
  withRetry,
  type RetryPolicy,
  redactUrl,
} from '../http';
import { readString, valueOf, type DicomDataset, Tag } from '../dicom';
import { pacsTransient, RetryableError } from './retry';
import { PacsError, type SourceStats } from './types';
import { createDicomwebClient, xhrExchange, XhrFailure, type DicomwebClientLike, type XhrAnswer } from './xhrAdapter';

export { restoreWireQuery } from './xhrAdapter';

export type QidoLevel = 'studies' | 'series' | 'instances';

export interface QidoRequest {
  level: QidoLevel;
  /** Scope the search to one study (/studies/{uid}/series). */
  studyUid?: string;
  /** With `studyUid`, scope an instance search to one series (/studies/{uid}/series/{uid}/instances). */
  seriesUid?: string;
  /** Keys and wire-ready values (see queryEncoding.ts). */
  params: Array<[string, string]>;
}

export interface QidoAnswer {
  datasets: DicomDataset[];
  status: number;
  /** The server said it left results out: a 206 or a `Warning: 299` header. */
  truncated: boolean;
  warning?: string;
}

export interface Transport {
  qido(req: QidoRequest): Promise<QidoAnswer>;
  metadata(studyUid: string): Promise<DicomDataset[]>;
  /** WADO-RS metadata of one instance (/studies/{s}/series/{se}/instances/{i}/metadata). */
  instanceMetadata(uids: { study: string; series: string; instance: string }): Promise<DicomDataset[]>;
}

type RequestKind = keyof SourceStats['requests'];

export interface TransportOptions {
  stats: SourceStats;
  retry: RetryPolicy;
  auth: Authorizer;
  httpsAgent?: https.Agent;
  onRetry?: (error: PacsError, attempt: number, delayMs: number) => void;
  /** Awaited before each HTTP attempt (metrics, tests that need a PACS to fail at a known point). */
  beforeRequest?: (kind: RequestKind) => void | Promise<void>;
  /** Each attempt's kind, status and duration (BridgeMetrics.pacsRequests); none: not recorded. */
  observe?: RequestObserver;
}

/** A dicomweb-client call, handed the `request` option that carries this exchange's xhr2 instance. */
type Call = (request: { instance: unknown }) => Promise<unknown>;
/** One request, retried and authorized as the policy says. */
type Send = (kind: RequestKind, what: string, call: Call) => Promise<XhrAnswer>;

/** An https.Agent for a source's TLS settings: extra CA bundle on top of Node's, client certificate. */
export function httpsAgentFor(cfg: SourceConfig): https.Agent | undefined {
  const t = cfg.tls;
  if (!t.caFile && !t.certFile && !t.keyFile && t.rejectUnauthorized) return undefined;
  const read = (file: string, what: string) => {
    try {
      return fs.readFileSync(file);
    } catch (e) {
      throw new Error(`source "${cfg.id}": cannot read tls.${what} ${file}: ${(e as Error).message}`, { cause: e });
    }
  };
  return new https.Agent({
    keepAlive: true,
    ca: t.caFile ? [...tls.rootCertificates, read(t.caFile, 'caFile').toString()] : undefined,
    cert: t.certFile ? read(t.certFile, 'certFile') : undefined,
    key: t.keyFile ? read(t.keyFile, 'keyFile') : undefined,
    rejectUnauthorized: t.rejectUnauthorized,
  });
}

export function createTransport(cfg: SourceConfig, opts: TransportOptions): Transport {
  const client = createDicomwebClient(cfg.qidoBase);
  const send = requester(cfg, opts);
  const label = `PACS "${cfg.id}"`;
  return {
    qido: (req) => qido(client, send, label, req),
    async metadata(studyUid) {
      const what = 'study metadata';
      const answer = await send('metadata', what, (request) =>
        client.retrieveStudyMetadata({ studyInstanceUID: studyUid, request }),
      );
      return asDatasets(label, what, answer.body);
    },
    async instanceMetadata(uids) {
      const what = 'instance metadata';
      const answer = await send('metadata', what, (request) =>
        client.retrieveInstanceMetadata({
          studyInstanceUID: uids.study,
          seriesInstanceUID: uids.series,
          sopInstanceUID: uids.instance,
          request,
        }),
      );
      return asDatasets(label, what, answer.body);
    },
  };
}

/**
 * Requests of one source: each attempt under the concurrency limit, counted, announced (beforeRequest),
 * observed; retried by the policy; a 401 gets one fresh OAuth2 token per request (src/http/auth.ts).
 */
function requester(cfg: SourceConfig, opts: TransportOptions): Send {
  const limit = pLimit(cfg.concurrency);
  const exchange = (what: string, call: Call, authorization: string | undefined) =>
    xhrExchange({ timeoutMs: cfg.timeoutMs, authorization, httpsAgent: opts.httpsAgent }, call).catch((e: unknown) =>
      Promise.reject(e instanceof XhrFailure ? describeFailure(cfg.id, what, cfg.timeoutMs, e, opts.retry) : e),
    );
  const attempt = (kind: RequestKind, what: string, call: Call, authorization: string | undefined) =>
    limit(async () => {
      opts.stats.requests[kind]++;
      await opts.beforeRequest?.(kind);
      return observed(opts.observe, kind, () => exchange(what, call, authorization), {
        answer: (a) => a.status,
        failure: (e) => (e instanceof PacsError ? e.status : 0),
      });
    });
  return (kind, what, call) => {
    const authorized = authorizedRequest(opts.auth, (e) => e instanceof PacsError && e.status === 401);
    return withRetry(() => authorized((authorization) => attempt(kind, what, call, authorization)), opts.retry, {
      transient: pacsTransient,
      onRetry: (e: PacsError, n, delayMs) => {
        opts.stats.retries++;
        opts.onRetry?.(e, n, delayMs);
      },
    });
  };
}

async function qido(client: DicomwebClientLike, send: Send, label: string, req: QidoRequest): Promise<QidoAnswer> {
  const scope = req.studyUid ? `studies/{uid}/${req.seriesUid ? 'series/{uid}/' : ''}` : '';
  const what = `${scope}${req.level} query`;
  const options = {
    queryParams: Object.fromEntries(req.params),
    ...(req.studyUid ? { studyInstanceUID: req.studyUid } : {}),
    ...(req.studyUid && req.seriesUid ? { seriesInstanceUID: req.seriesUid } : {}),
  };
  const search =
    req.level === 'studies'
      ? client.searchForStudies
      : req.level === 'series'
        ? client.searchForSeries
        : client.searchForInstances;
  const answer = await send(req.level, what, (request) => search.call(client, { ...options, request }));
  const warning = answer.header('warning');
  return {
    datasets: withRowUids(label, what, req.level, asDatasets(label, what, answer.body)),
    status: answer.status,
    truncated: answer.status === 206 || (warning !== undefined && /(^|,)\s*299\b/.test(warning)),
    warning,
  };
}

function asDatasets(label: string, what: string, body: unknown): DicomDataset[] {
  // xhr2 turns an unparsable JSON body into null; a cut-off body is worth another try.
  if (body === null || body === undefined) {
    throw new PacsError(`${label} ${what}: the answer is not valid JSON`, 200, 'bad-response', true);
  }
  if (!Array.isArray(body)) {
    throw new PacsError(`${label} ${what}: expected a JSON array of DICOM datasets`, 200, 'bad-response', false);
  }
  return body as DicomDataset[];
}

/** The UID every row of a level's QIDO-RS answer carries (PS3.18 Tables 10.6.3-3, -4 and -5: required). */
const ROW_UID: Record<QidoLevel, { tag: string; name: string }> = {
  studies: { tag: Tag.StudyInstanceUID, name: 'StudyInstanceUID (0020,000D)' },
  series: { tag: Tag.SeriesInstanceUID, name: 'SeriesInstanceUID (0020,000E)' },
  instances: { tag: Tag.SOPInstanceUID, name: 'SOPInstanceUID (0008,0018)' },
};

/**
 * A row without its level's UID is not a study (series, instance) at all: read as one, a listing of such rows
 * makes every known study look vanished, and a look-up by UID answered with them looks like "not found". The
 * whole answer is refused, like HTML or cut-off JSON. The message names the row, never its values.
 */
function withRowUids(label: string, what: string, level: QidoLevel, datasets: DicomDataset[]): DicomDataset[] {
  const { tag, name } = ROW_UID[level];
  const bad = datasets.findIndex((ds) => valueOf(readString(ds, tag)) === undefined);
  if (bad < 0) return datasets;
  throw new PacsError(
    `${label} ${what}: row ${bad + 1} of ${datasets.length} has no ${name}; the answer is malformed`,
    200,
    'bad-response',
    false,
  );
}

/** A failed exchange as a PacsError: retryable as the policy says, never showing credentials or query. */
function describeFailure(
  sourceId: string,
  what: string,
  timeoutMs: number,
  failure: XhrFailure,
  policy: RetryPolicy,
): PacsError {
  const label = `PACS "${sourceId}"`;
  // Connection failures name the URL tried, so an operator can check it (never its credentials or query).
  const at = failure.url ? ` (${redactUrl(failure.url)})` : '';
  if (failure.timedOut)
    return new PacsError(`${label} ${what}: no answer within ${timeoutMs} ms${at}`, 0, 'timeout', true);
  const status = failure.status;
  if (status === 0) {
    const cause = failure.networkError ?? 'network error';
    // A certificate the bridge does not trust will not become trusted by asking again.
    if (/CERT|SIGNATURE|SELF_SIGNED|ERR_TLS|ERR_SSL/.test(cause)) {
      return new PacsError(`${label} ${what}: TLS failed (${cause})${at}; check sources[].tls`, 0, 'network', false);
    }
    return new PacsError(`${label} ${what}: ${cause}${at}`, 0, 'network', true);
  }
  if (status === 401 || status === 403) {
    const refusal =
      status === 401 ? 'did not accept the configured credentials' : 'refused access with the configured credentials';
    return new PacsError(
      `${label} ${what}: HTTP ${status}, the PACS ${refusal} (check sources[].auth for "${sourceId}")`,
      status,
      'auth',
      false,
    );
  }
  if (policy.retryableStatus(status)) {
    return new RetryableError(`${label} ${what}: HTTP ${status}`, status, 'http', parseRetryAfter(failure.retryAfter));
  }
  return new PacsError(`${label} ${what}: HTTP ${status}`, status, 'http', false);
}
