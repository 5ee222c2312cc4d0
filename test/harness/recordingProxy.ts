/**
 * An HTTP proxy in front of Orthanc that records every request by DICOMweb level (QIDO studies, series,
 * instances; WADO metadata), so tests can assert what a sync asked the PACS. It can also slow requests
 * down (to catch a run mid-way) and fail chosen ones. When Orthanc is down, the client's connection is
 * dropped, as it would be without the proxy.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type DicomWebLevel = 'studies' | 'series' | 'instances' | 'metadata' | 'other';

export interface RecordedRequest {
  method: string;
  /** Path and query as received, e.g. /dicom-web/studies?StudyDate=... */
  url: string;
  level: DicomWebLevel;
  status?: number;
  /** Time from the request's arrival to the end of the answer, in ms (delay included). */
  durationMs?: number;
}

export interface RecordingProxy {
  /** http://127.0.0.1:PORT — the proxy's origin. */
  url: string;
  /** The target URL (e.g. Orthanc's /dicom-web base) seen through the proxy. */
  via(targetUrl: string): string;
  requests: RecordedRequest[];
  /** Requests per level since the last reset. */
  counts(): Record<DicomWebLevel, number>;
  reset(): void;
  /** Milliseconds to hold every request before forwarding it. */
  delayMs: number;
  /** Answer matching requests with this status instead of forwarding them; undefined clears it. */
  failWhen(match?: (req: { method: string; url: string }) => boolean, status?: number): void;
  stop(): Promise<void>;
}

/** The DICOMweb level of a request path (query ignored). */
export function levelOf(url: string): DicomWebLevel {
  const p = url.split('?')[0].replace(/\/+$/, '');
  if (/\/metadata$/.test(p)) return 'metadata';
  if (/\/instances(\/[^/]+)?$/.test(p)) return 'instances';
  if (/\/series(\/[^/]+)?$/.test(p)) return 'series';
  if (/\/studies(\/[^/]+)?$/.test(p)) return 'studies';
  return 'other';
}

export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const origin = new URL(target);
  const requests: RecordedRequest[] = [];
  let failure: { match: (req: { method: string; url: string }) => boolean; status: number } | undefined;

  const proxy: RecordingProxy = {
    url: '',
    via: (targetUrl) => {
      const u = new URL(targetUrl);
      return `${proxy.url}${u.pathname.replace(/\/$/, '')}${u.search}`;
    },
    requests,
    counts() {
      const out: Record<DicomWebLevel, number> = { studies: 0, series: 0, instances: 0, metadata: 0, other: 0 };
      for (const r of requests) out[r.level]++;
      return out;
    },
    reset: () => {
      requests.length = 0;
    },
    delayMs: 0,
    failWhen(match, status = 500) {
      failure = match ? { match, status } : undefined;
    },
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };

  const forward = (req: IncomingMessage, res: ServerResponse, record: RecordedRequest, arrived: number) => {
    const upstream = http.request(
      { host: origin.hostname, port: origin.port, method: req.method, path: req.url, headers: { ...req.headers, host: origin.host } },
      (answer) => {
        record.status = answer.statusCode;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on('end', () => (record.durationMs = Date.now() - arrived));
      },
    );
    // Orthanc down: drop the client's connection, the same failure it would see talking to Orthanc directly.
    upstream.on('error', () => req.socket.destroy());
    req.pipe(upstream);
  };

  const server = http.createServer((req, res) => {
    const arrived = Date.now();
    const record: RecordedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', level: levelOf(req.url ?? '/') };
    requests.push(record);
    const go = () => {
      if (failure?.match({ method: record.method, url: record.url })) {
        req.resume();
        record.status = failure.status;
        res.writeHead(failure.status, { 'Content-Type': 'text/plain' });
        res.end(`injected ${failure.status}`);
        return;
      }
      forward(req, res, record, arrived);
    };
    if (proxy.delayMs > 0) setTimeout(go, proxy.delayMs);
    else go();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
