/**
 * An HTTP proxy for tests, put between a client and a server: forwards every request unchanged,
 * except those a queued fault claims — those get an injected status (e.g. 429/503 with Retry-After)
 * or a dropped connection, without reaching the server. Every request is recorded with a timestamp,
 * so tests can check how many attempts were made and how long the client waited between them.
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
  /** How many matching requests this fault claims (default 1). */
  times?: number;
  /** Which requests it applies to (default: all). `path` is relative to the proxy root. */
  match?: (req: { method: string; path: string }) => boolean;
}

export interface ProxiedRequest {
  at: number;
  method: string;
  path: string;
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
  stop(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const targetUrl = new URL(target);
  const faults: Array<Fault & { left: number }> = [];
  const requests: ProxiedRequest[] = [];

  const claim = (method: string, path: string) => {
    const fault = faults.find((f) => f.left > 0 && (!f.match || f.match({ method, path })));
    if (fault) fault.left--;
    return fault;
  };

  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const record: ProxiedRequest = { at: Date.now(), method: req.method ?? 'GET', path: req.url ?? '/' };
    requests.push(record);
    const fault = claim(record.method, record.path);
    if (fault) {
      // Drain the body first so the client sees an answer, not a write error.
      req.resume();
      req.on('end', () => {
        if (fault.reset || fault.status === undefined) {
          record.injected = 'reset';
          req.socket.destroy();
          return;
        }
        record.injected = fault.status;
        record.status = fault.status;
        const headers: Record<string, string> = { 'Content-Type': 'application/fhir+json' };
        if (fault.retryAfter !== undefined) headers['Retry-After'] = fault.retryAfter;
        res.writeHead(fault.status, headers);
        res.end(
          JSON.stringify({
            resourceType: 'OperationOutcome',
            issue: [{ severity: 'error', code: fault.status === 429 ? 'throttled' : 'transient', details: { text: `injected ${fault.status}` } }],
          }),
        );
      });
      return;
    }
    const upstream = http.request(
      { host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers: { ...req.headers, host: targetUrl.host } },
      (up) => {
        record.status = up.statusCode;
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      record.status = 502;
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    via: (t: string) => {
      const u = new URL(t);
      return `${url}${u.pathname.replace(/\/$/, '')}${u.search}`;
    },
    inject: (fault) => faults.push({ ...fault, left: fault.times ?? 1 }),
    clearFaults: () => void faults.splice(0),
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
