/**
 * dicomweb-client under Node, with xhr2 as its XMLHttpRequest: the only module that knows either.
 * Each request gets its own xhr2 instance (passed to dicomweb-client as `request.instance`), and a
 * request hook applies that request's timeout, TLS agent and Authorization header. After the call
 * the instance still holds status and headers, which dicomweb-client does not return (206, Warning).
 * No global XMLHttpRequest is installed: axios would then pick its XHR adapter for the whole process.
 * What is still worked around here, and why: docs/decisions.md ("dicomweb-client adapter").
 */
import type https from 'node:https';
import { api } from 'dicomweb-client';
import { DeadlineError, withDeadline } from '../http';

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

/** What one exchange is sent with. */
export interface XhrRequest {
  timeoutMs: number;
  authorization?: string;
  httpsAgent?: https.Agent;
}

interface RequestContext extends XhrRequest {
  timedOut: boolean;
  networkError?: string;
  /** The URL of the request, for messages. */
  url?: string;
}

/** An answer dicomweb-client accepted (200, 202, 204, 206), with what it does not return. */
export interface XhrAnswer {
  body: unknown;
  status: number;
  header(name: string): string | undefined;
}

/** No usable answer: an HTTP status dicomweb-client rejects, or none (status 0: network, timeout). */
export class XhrFailure extends Error {
  constructor(
    readonly status: number,
    readonly timedOut: boolean,
    /** The socket error's code (ECONNREFUSED, a TLS code), when there was no answer. */
    readonly networkError: string | undefined,
    /** The URL tried, as sent (redact before showing). */
    readonly url: string | undefined,
    readonly retryAfter: string | undefined,
  ) {
    super(timedOut ? 'timeout' : status ? `HTTP ${status}` : (networkError ?? 'network error'));
    this.name = 'XhrFailure';
  }
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
  // xhr2's own timeout is an idle-socket one; withDeadline below bounds the whole exchange.
  xhr.timeout = ctx.timeoutMs;
  if (ctx.httpsAgent) xhr.nodejsSet({ httpsAgent: ctx.httpsAgent });
  if (ctx.authorization) xhr.setRequestHeader('Authorization', ctx.authorization);
  xhr.addEventListener('timeout', () => (ctx.timedOut = true));
  return xhr;
}

/** The dicomweb-client calls the bridge makes. */
export interface DicomwebClientLike {
  searchForStudies(o: object): Promise<unknown>;
  searchForSeries(o: object): Promise<unknown>;
  searchForInstances(o: object): Promise<unknown>;
  retrieveStudyMetadata(o: object): Promise<unknown>;
  retrieveInstanceMetadata(o: object): Promise<unknown>;
}

export function createDicomwebClient(qidoBase: string): DicomwebClientLike {
  return new api.DICOMwebClient({
    url: qidoBase.replace(/\/+$/, ''),
    verbose: false,
    requestHooks: [applyContext],
  } as never) as unknown as DicomwebClientLike;
}

/**
 * One exchange: `call` hands the given `request` object to a dicomweb-client method. Resolves with the
 * body, status and headers; rejects with an XhrFailure. The deadline race is needed because xhr2's
 * abort() never completes the request, so dicomweb-client's promise would stay pending.
 */
export async function xhrExchange(
  request: XhrRequest,
  call: (request: { instance: unknown }) => Promise<unknown>,
): Promise<XhrAnswer> {
  const ctx: RequestContext = { ...request, timedOut: false };
  const xhr = new BridgeXhr(ctx);
  try {
    const body = await withDeadline(request.timeoutMs, (signal) => {
      signal.addEventListener('abort', () => xhr.abort());
      return call({ instance: xhr });
    });
    return { body, status: xhr.status, header: (name) => xhr.getResponseHeader(name) ?? undefined };
  } catch (e) {
    const timedOut = ctx.timedOut || e instanceof DeadlineError;
    const status = timedOut ? 0 : Number((e as { status?: number }).status ?? xhr.status) || 0;
    const retryAfter = status ? (xhr.getResponseHeader('retry-after') ?? undefined) : undefined;
    throw new XhrFailure(status, timedOut, ctx.networkError, ctx.url, retryAfter);
  }
}
