/**
 * The one module that talks DICOMweb: dicomweb-client under Node, with xhr2 as its XMLHttpRequest.
 * Each request gets its own xhr2 instance (passed to dicomweb-client as `request.instance`), and a
 * request hook applies that request's timeout, TLS agent and Authorization header. After the call
 * the instance still holds status and headers, which dicomweb-client does not return (206, Warning).
 * No global XMLHttpRequest is installed: axios would then pick its XHR adapter for the whole process.
 */
import fs from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import pLimit from 'p-limit';
import { api } from 'dicomweb-client';
import type { SourceConfig } from '../config/schema';
import type { Authorizer } from './auth';
import type { DicomDataset } from './dicomJson';
import { parseRetryAfter } from '../http/backoff';
import { redactUrl } from '../http/url';
import { RetryableError, withRetry, type RetryPolicy } from './retry';
import { PacsError, type SourceStats } from './types';
import { metrics } from '../metrics';

// xhr2 ships no types; this is the part of it used here.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- xhr2 has no types; typed by the line below
const Xhr2: new () => Xhr2Instance = require('xhr2');

interface Xhr2Instance {
  status: number;
  timeout: number;
  open(method: string, url: string, async?: boolean): void;
  setRequestHeader(name: string, value: string): void;
  getResponseHeader(name: string): string | null;
  abort(): void;
  addEventListener(type: string, fn: () => void): void;
  nodejsSet(options: { httpsAgent?: https.Agent }): void;
}

interface RequestContext {
  timeoutMs: number;
  authorization?: string;
  httpsAgent?: https.Agent;
  timedOut: boolean;
  networkError?: string;
  /** The URL of the request, for messages (shown without credentials or query). */
  url?: string;
}

/**
 * dicomweb-client runs every query value through encodeURIComponent. The values handed to it here
 * are already in their wire form (queryEncoding.ts), so open() undoes that one encoding step.
 */
class BridgeXhr extends Xhr2 {
  constructor(readonly ctx: RequestContext) {
    super();
  }
  override open(method: string, url: string, async?: boolean): void {
    this.ctx.url = url;
    super.open(method, restoreWireQuery(url), async);
  }
  // xhr2 reports a failed socket as status 0 without its cause; keep the cause for the message.
  _onHttpRequestError(request: unknown, error: NodeJS.ErrnoException): unknown {
    this.ctx.networkError = error.code ?? error.message;
    return (
      Xhr2.prototype as unknown as { _onHttpRequestError: (r: unknown, e: unknown) => unknown }
    )._onHttpRequestError.call(this, request, error);
  }
}

export function restoreWireQuery(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      return eq < 0 ? pair : `${pair.slice(0, eq)}=${decodeURIComponent(pair.slice(eq + 1))}`;
    })
    .join('&');
  return `${url.slice(0, q)}?${query}`;
}

function applyContext(request: unknown, _metadata: unknown): unknown {
  const xhr = request as BridgeXhr;
  const ctx = xhr.ctx;
  if (!ctx) return xhr;
  xhr.timeout = ctx.timeoutMs;
  if (ctx.httpsAgent) xhr.nodejsSet({ httpsAgent: ctx.httpsAgent });
  if (ctx.authorization) xhr.setRequestHeader('Authorization', ctx.authorization);
  xhr.addEventListener('timeout', () => (ctx.timedOut = true));
  return xhr;
}

interface DicomwebClientLike {
  searchForStudies(o: object): Promise<unknown>;
  searchForSeries(o: object): Promise<unknown>;
  searchForInstances(o: object): Promise<unknown>;
  retrieveStudyMetadata(o: object): Promise<unknown>;
  retrieveInstanceMetadata(o: object): Promise<unknown>;
}

export type QidoLevel = 'studies' | 'series' | 'instances';

export interface QidoRequest {
  level: QidoLevel;
  /** Scope the search to one study (/studies/{uid}/series). */
  studyUid?: string;
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

export interface TransportOptions {
  stats: SourceStats;
  retry: RetryPolicy;
  auth: Authorizer;
  httpsAgent?: https.Agent;
  onRetry?: (error: PacsError, attempt: number, delayMs: number) => void;
  /** Awaited before each HTTP attempt (metrics, tests that need a PACS to fail at a known point). */
  beforeRequest?: (kind: keyof SourceStats['requests']) => void | Promise<void>;
}

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
  const client = new api.DICOMwebClient({
    url: cfg.qidoBase.replace(/\/+$/, ''),
    verbose: false,
    requestHooks: [applyContext],
  } as never) as unknown as DicomwebClientLike;
  const limit = pLimit(cfg.concurrency);
  const label = `PACS "${cfg.id}"`;

  /** One HTTP exchange; what went wrong becomes a PacsError saying whether to retry. */
  const once = async (what: string, call: (xhr: BridgeXhr) => Promise<unknown>) => {
    const ctx: RequestContext = { timeoutMs: cfg.timeoutMs, httpsAgent: opts.httpsAgent, timedOut: false };
    ctx.authorization = await opts.auth.header();
    const xhr = new BridgeXhr(ctx);
    let timer: NodeJS.Timeout | undefined;
    // xhr2's timeout is an idle-socket timeout; this one bounds the whole exchange.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        ctx.timedOut = true;
        xhr.abort();
        reject(new Error('deadline'));
      }, cfg.timeoutMs);
    });
    try {
      const body = await Promise.race([call(xhr), deadline]);
      return { body, xhr };
    } catch (e) {
      throw describeFailure(label, what, cfg.timeoutMs, ctx, xhr, e);
    } finally {
      clearTimeout(timer);
    }
  };

  const request = (kind: keyof SourceStats['requests'], what: string, call: (xhr: BridgeXhr) => Promise<unknown>) =>
    withRetry(
      async () => {
        const attempt = () =>
          limit(async () => {
            opts.stats.requests[kind]++;
            await opts.beforeRequest?.(kind);
            const started = process.hrtime.bigint();
            const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
            try {
              const answer = await once(what, call);
              metrics.qidoRequest(cfg.id, kind, answer.xhr.status, seconds());
              return answer;
            } catch (e) {
              metrics.qidoRequest(cfg.id, kind, e instanceof PacsError ? e.status : 0, seconds());
              throw e;
            }
          });
        try {
          return await attempt();
        } catch (e) {
          // A refreshed OAuth2 token may fix a 401 once (revoked or rotated token).
          if (e instanceof PacsError && e.status === 401 && opts.auth.refreshable) {
            opts.auth.invalidate();
            return attempt();
          }
          throw e;
        }
      },
      opts.retry,
      (e, n, delay) => {
        opts.stats.retries++;
        opts.onRetry?.(e, n, delay);
      },
    );

  return {
    async qido(req) {
      const what = `${req.studyUid ? 'studies/{uid}/' : ''}${req.level} query`;
      const queryParams = Object.fromEntries(req.params);
      const options: Record<string, unknown> = { queryParams };
      if (req.studyUid) options.studyInstanceUID = req.studyUid;
      const { body, xhr } = await request(req.level, what, (instance) => {
        options.request = { instance };
        if (req.level === 'studies') return client.searchForStudies(options);
        if (req.level === 'series') return client.searchForSeries(options);
        return client.searchForInstances(options);
      });
      const datasets = asDatasets(label, what, body);
      const warning = xhr.getResponseHeader('warning') ?? undefined;
      return {
        datasets,
        status: xhr.status,
        truncated: xhr.status === 206 || (warning !== undefined && /(^|,)\s*299\b/.test(warning)),
        warning,
      };
    },
    async metadata(studyUid) {
      const what = 'study metadata';
      const { body } = await request('metadata', what, (instance) =>
        client.retrieveStudyMetadata({ studyInstanceUID: studyUid, request: { instance } }),
      );
      return asDatasets(label, what, body);
    },
    async instanceMetadata(uids) {
      const what = 'instance metadata';
      const { body } = await request('metadata', what, (instance) =>
        client.retrieveInstanceMetadata({
          studyInstanceUID: uids.study,
          seriesInstanceUID: uids.series,
          sopInstanceUID: uids.instance,
          request: { instance },
        }),
      );
      return asDatasets(label, what, body);
    },
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

function describeFailure(
  label: string,
  what: string,
  timeoutMs: number,
  ctx: RequestContext,
  xhr: Xhr2Instance,
  e: unknown,
): PacsError {
  if (e instanceof PacsError) return e;
  // Connection failures name the URL tried, so an operator can check it (never its credentials or query).
  const at = ctx.url ? ` (${redactUrl(ctx.url)})` : '';
  if (ctx.timedOut) return new PacsError(`${label} ${what}: no answer within ${timeoutMs} ms${at}`, 0, 'timeout', true);
  const status = Number((e as { status?: number }).status ?? xhr.status) || 0;
  if (status === 0) {
    const cause = ctx.networkError ?? 'network error';
    // A certificate the bridge does not trust will not become trusted by asking again.
    if (/CERT|SIGNATURE|SELF_SIGNED|ERR_TLS|ERR_SSL/.test(cause)) {
      return new PacsError(`${label} ${what}: TLS failed (${cause})${at}; check sources[].tls`, 0, 'network', false);
    }
    return new PacsError(`${label} ${what}: ${cause}${at}`, 0, 'network', true);
  }
  if (status === 401 || status === 403) {
    return new PacsError(
      `${label} ${what}: HTTP ${status}, the PACS ${status === 401 ? 'did not accept the configured credentials' : 'refused access with the configured credentials'} (check sources[].auth for "${label.slice(6, -1)}")`,
      status,
      'auth',
      false,
    );
  }
  if (status === 429 || (status >= 502 && status <= 504)) {
    return new RetryableError(
      `${label} ${what}: HTTP ${status}`,
      status,
      'http',
      parseRetryAfter(xhr.getResponseHeader('retry-after')),
    );
  }
  return new PacsError(`${label} ${what}: HTTP ${status}`, status, 'http', false);
}
