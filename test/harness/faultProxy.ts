/**
 * An HTTP proxy for tests, put between a client and a server: forwards every request unchanged,
 * except those a queued fault claims — those get an injected status (e.g. 429/503 with Retry-After)
 * or a dropped connection, without reaching the server. Every request is recorded with a timestamp,
 * so tests can check how many attempts were made and how long the client waited between them.
 * The PACS-side recording proxy (recordingProxy.ts) is this proxy with DICOMweb levels on top.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Fault {
  /** Status to answer with; omit together with `reset: true` to drop the connection instead. */
  status?: number;
  /** Retry-After header value: seconds ("1") or an HTTP date. */
  retryAfter?: string;
  /** Destroy the socket without answering (a network error for the client). */
  reset?: boolean;
  /** How many matching requests this fault claims (default 1; Infinity until cleared). */
  times?: number;
  /**
   * Which requests it applies to (default: all). `path` is relative to the proxy root; `body` is the
   * request body as text (e.g. to fail only the transactions that carry one study).
   */
  match?: (req: { method: string; path: string; body: string }) => boolean;
  /** Body of an injected answer (default: an OperationOutcome saying "injected <status>"). */
  body?: { contentType: string; text: string };
}

export interface ProxyOptions {
  /**
   * When the server cannot be reached: answer 502 (default) or drop the client's connection,
   * as a direct client would see.
   */
  onUpstreamError?: '502' | 'drop';
}

export interface ProxiedRequest {
  at: number;
  method: string;
  /** Path and query as received. */
  path: string;
  /** Time from arrival to the end of the answer, in ms (delay included). */
  durationMs?: number;
  /** The injected status, 'reset', or undefined when forwarded. */
  injected?: number | 'reset';
  /** Status the server (or the fault) answered with. */
  status?: number;
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT — replace the target's origin with this. */
  url: string;
  /** Map a target URL (e.g. the FHIR base) to the same path through the proxy. */
  via(targetUrl: string): string;
  inject(fault: Fault): void;
  clearFaults(): void;
  requests: ProxiedRequest[];
  /** Milliseconds to hold every request before handling it (to catch a client mid-run). */
  delayMs: number;
  stop(): Promise<void>;
}

function operationOutcome(status: number) {
  return {
    contentType: 'application/fhir+json',
    text: JSON.stringify({
      resourceType: 'OperationOutcome',
      issue: [
        {
          severity: 'error',
          code: status === 429 ? 'throttled' : 'transient',
          details: { text: `injected ${status}` },
        },
      ],
    }),
  };
}

export async function startFaultProxy(target: string, options: ProxyOptions = {}): Promise<FaultProxy> {
  const targetUrl = new URL(target);
  const faults: Array<Fault & { left: number }> = [];
  const requests: ProxiedRequest[] = [];

  const claim = (method: string, path: string, body: string) => {
    const fault = faults.find((f) => f.left > 0 && (!f.match || f.match({ method, path, body })));
    if (fault) fault.left--;
    return fault;
  };

  // The whole request body is read first (test bodies are small), so a fault can match on it.
  const handle = (req: IncomingMessage, res: ServerResponse, record: ProxiedRequest) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => answer(req, res, record, Buffer.concat(chunks)));
  };

  const answer = (req: IncomingMessage, res: ServerResponse, record: ProxiedRequest, requestBody: Buffer) => {
    const fault = claim(record.method, record.path, requestBody.toString('utf8'));
    if (fault) {
      if (fault.reset || fault.status === undefined) {
        record.injected = 'reset';
        req.socket.destroy();
        return;
      }
      record.injected = fault.status;
      record.status = fault.status;
      const body = fault.body ?? operationOutcome(fault.status);
      const headers: Record<string, string> = { 'Content-Type': body.contentType };
      if (fault.retryAfter !== undefined) headers['Retry-After'] = fault.retryAfter;
      res.writeHead(fault.status, headers);
      res.end(body.text, () => (record.durationMs = Date.now() - record.at));
      return;
    }
    const upstream = http.request(
      {
        host: targetUrl.hostname,
        port: targetUrl.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: targetUrl.host },
      },
      (up) => {
        record.status = up.statusCode;
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
        up.on('end', () => (record.durationMs = Date.now() - record.at));
      },
    );
    upstream.on('error', () => {
      if (options.onUpstreamError === 'drop') return void req.socket.destroy();
      record.status = 502;
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    upstream.end(requestBody);
  };

  const proxy: FaultProxy = {
    url: '',
    via: (t: string) => {
      const u = new URL(t);
      return `${proxy.url}${u.pathname.replace(/\/$/, '')}${u.search}`;
    },
    inject: (fault) => faults.push({ ...fault, left: fault.times ?? 1 }),
    clearFaults: () => void faults.splice(0),
    requests,
    delayMs: 0,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };

  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const record: ProxiedRequest = { at: Date.now(), method: req.method ?? 'GET', path: req.url ?? '/' };
    requests.push(record);
    if (proxy.delayMs > 0) setTimeout(() => handle(req, res, record), proxy.delayMs);
    else handle(req, res, record);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
