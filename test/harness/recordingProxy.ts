/**
 * An HTTP proxy in front of Orthanc that records every request by DICOMweb level (QIDO studies, series,
 * instances; WADO metadata), so tests can assert what a sync asked the PACS. It can also slow requests
 * down (to catch a run mid-way) and fail chosen ones. When Orthanc is down, the client's connection is
 * dropped, as it would be without the proxy.
 */
import { startFaultProxy } from './faultProxy';

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

/** What the fault proxy records, seen by DICOMweb level; read-only snapshots. */
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
  // Orthanc down: drop the client's connection, the same failure it would see talking to Orthanc directly.
  const core = await startFaultProxy(target, { onUpstreamError: 'drop' });
  const recorded = (): RecordedRequest[] =>
    core.requests.map((r) => ({
      method: r.method,
      url: r.path,
      level: levelOf(r.path),
      status: r.status,
      durationMs: r.durationMs,
    }));
  return {
    url: core.url,
    via: core.via,
    get requests() {
      return recorded();
    },
    counts() {
      const out: Record<DicomWebLevel, number> = { studies: 0, series: 0, instances: 0, metadata: 0, other: 0 };
      for (const r of recorded()) out[r.level]++;
      return out;
    },
    reset: () => void core.requests.splice(0),
    get delayMs() {
      return core.delayMs;
    },
    set delayMs(ms: number) {
      core.delayMs = ms;
    },
    failWhen(match, status = 500) {
      core.clearFaults();
      if (match) {
        core.inject({
          status,
          times: Infinity,
          match: (req) => match({ method: req.method, url: req.path }),
          body: { contentType: 'text/plain', text: `injected ${status}` },
        });
      }
    },
    stop: core.stop,
  };
}
