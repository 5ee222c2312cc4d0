/**
 * Lookup API: the bridge's own FHIR API in live mode, built as `serve` builds it (auth "none", audit and
 * rate limit off so they cannot interfere, cache at its defaults), answering the lookup an EHR makes when
 * it opens an order's images: `GET /fhir/ImagingStudy?identifier=<accession number>`.
 *  - cache hit: one request fills the answer cache, then autocannon (in a worker thread, so the load
 *    generator does not share the server's event loop) repeats it; no request may reach the PACS.
 *  - cache miss: a distinct accession each time, timed against the very QIDO requests the bridge made for
 *    such a lookup (captured from its HTTP client), replayed one after another with plain node:http.
 * Targets (issue): ≥ 3,000 requests/s and p99 < 20 ms on hits; miss median ≤ 1.1 × raw median + 2 ms.
 * Accession numbers and patient data never appear in the result or in errors (UIDs do).
 */
import autocannon from 'autocannon';
import dc from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import http, { type ClientRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { createApiApp, createStudyLookup, startApiServer } from '../src/api/app';
import { parseApiConfig } from '../src/api/config';
import { sourceSchema } from '../src/config';
import { createPacsSource } from '../src/dicomweb';
import { silentLogger } from '../src/log';
import type { SyntheticStudy } from '../test/fixtures/synthetic';
import type { BenchCorpus } from './corpus';
import { percentile } from './stats';

/** 10 connections keep the one-threaded server busy; more only queue (same throughput, higher p99). */
const LOAD = { connections: 10, durationSeconds: 10, warmupSeconds: 2, workers: 1, pipelining: 1 };
const MISS_LOOKUPS = 30;
const WARMUP_LOOKUPS = 5;

export interface LookupApiResult {
  /** The URL measured, with the accession number as a placeholder. */
  lookup: string;
  cacheHit: {
    autocannon: typeof LOAD;
    /** Study looked up (its accession number is the query). */
    studyUid: string;
    requests: number;
    requestsPerSecond: number;
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
    non2xx: number;
    /** QIDO requests that reached the PACS during the run: 0, else the run fails. */
    pacsRequests: number;
    /** Share of the run the server's event loop was busy: well below 1 means the server was not the limit. */
    serverLoopBusy: number;
    /** CPU of the server's thread per request (Linux schedstat; null elsewhere): 1000 ÷ this bounds req/s per core. */
    serverCpuMsPerRequest: number | null;
  };
  cacheMiss: {
    lookups: number;
    /** QIDO requests one miss makes, in order, as paths (the raw side replays the same ones). */
    qidoSequence: string[];
    apiMedianMs: number;
    apiP90Ms: number;
    rawMedianMs: number;
    rawP90Ms: number;
    /** A miss split in two: inside the bridge's QIDO exchanges (request to response end), and the rest. */
    bridgeQidoMedianMs: number;
    bridgeOwnMedianMs: number;
    /** apiMedianMs ÷ rawMedianMs, and the target 1.1 × rawMedianMs + 2. */
    ratio: number;
    limitMs: number;
  };
  /** 1-minute load average at the start: other work on the machine skews every number here. */
  loadAverage: number;
  targets: { throughput: boolean; p99: boolean; cacheMiss: boolean };
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits));

/** CPU time of this process's main thread in ms (ns-accurate, unlike getrusage), or null off Linux. */
function mainThreadCpuMs(): number | null {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return null;
  }
}

/** One GET with the body read and parsed (both sides pay the same parse); no query string in errors. */
function getJson(agent: http.Agent, url: string, accept: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers: { accept } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          if ((res.statusCode ?? 0) >= 300) reject(new Error(`HTTP ${res.statusCode} from ${new URL(url).pathname}`));
          else resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        });
      })
      .on('error', reject);
  });
}

const timed = async (fn: () => Promise<unknown>): Promise<number> => {
  const started = performance.now();
  return fn().then(() => performance.now() - started);
};

/** A study's own values in a QIDO path ↔ placeholders, to replay one lookup's requests for another study. */
const toTemplate = (s: SyntheticStudy, path: string) =>
  path.split(s.accession!).join('{accession}').split(s.studyUid).join('{studyUid}');
const fromTemplate = (s: SyntheticStudy, path: string) =>
  path.split('{accession}').join(s.accession!).split('{studyUid}').join(s.studyUid);

export async function runLookupApi(corpus: BenchCorpus): Promise<LookupApiResult> {
  const loadAverage = round(os.loadavg()[0]!);
  const dicomWeb = new URL(corpus.orthanc.dicomWebBase);
  const source = sourceSchema.parse({ id: 'bench', qidoBase: corpus.orthanc.dicomWebBase });
  let pacsRequests = 0;
  const pacs = createPacsSource(source, { beforeRequest: () => void pacsRequests++ });
  const config = parseApiConfig({
    mode: 'live',
    auth: { type: 'none' },
    audit: { enabled: false },
    rateLimit: { enabled: false },
  });
  const studyLookup = createStudyLookup({ config, sources: [{ config: source, pacs }], logger: silentLogger });
  const app = createApiApp({ config, lookup: studyLookup, logger: silentLogger });
  const server = await startApiServer(app, { host: '127.0.0.1', port: 0 });
  const apiUrl = (s: SyntheticStudy) =>
    `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir/ImagingStudy?identifier=${encodeURIComponent(s.accession!)}`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  // The bridge's requests to Orthanc, seen (and timed) where they leave its HTTP client: xhr2 over node:http.
  const sent: string[] = [];
  let qidoMs = 0;
  const onRequest = (m: unknown) => {
    const request = (m as { request: ClientRequest }).request;
    if (!request.path.startsWith(dicomWeb.pathname)) return;
    sent.push(request.path);
    const started = performance.now();
    request.once('response', (res) => res.once('end', () => (qidoMs += performance.now() - started)));
  };
  dc.subscribe('http.client.request.start', onRequest);
  try {
    // Studies with an accession number (unique in the corpus), spread over the whole date range.
    const withAccession = corpus.studies.filter((s) => s.accession);
    const step = Math.floor(withAccession.length / (1 + WARMUP_LOOKUPS + 2 * MISS_LOOKUPS));
    const [hitStudy, ...rest] = Array.from(
      { length: 1 + WARMUP_LOOKUPS + 2 * MISS_LOOKUPS },
      (_, i) => withAccession[i * step]!,
    );

    // ── cache hit ──
    await getJson(agent, apiUrl(hitStudy!), 'application/fhir+json'); // the one miss that fills the cache
    const before = pacsRequests;
    const load = {
      url: apiUrl(hitStudy!),
      connections: LOAD.connections,
      pipelining: LOAD.pipelining,
      workers: LOAD.workers,
    };
    await autocannon({ ...load, duration: LOAD.warmupSeconds }); // JIT warm-up, not reported
    const [elu, cpu0] = [performance.eventLoopUtilization(), mainThreadCpuMs()];
    const r = await autocannon({ ...load, duration: LOAD.durationSeconds });
    const [busy, cpu1] = [performance.eventLoopUtilization(elu).utilization, mainThreadCpuMs()];
    const hitPacs = pacsRequests - before;
    if (r.non2xx || r.errors)
      throw new Error(`lookup API cache-hit run: ${r.non2xx} non-2xx answers, ${r.errors} errors`);
    if (hitPacs)
      throw new Error(`lookup API cache-hit run: ${hitPacs} requests reached the PACS (the cache did not answer)`);

    // ── cache miss ──
    const lookup = async (s: SyntheticStudy) => {
      sent.length = 0;
      qidoMs = 0;
      const ms = await timed(async () => {
        const bundle = (await getJson(agent, apiUrl(s), 'application/fhir+json')) as {
          entry?: { resource?: { id?: string } }[];
        };
        // A lookup that finds nothing (or something else) would be fast for the wrong reason.
        if (bundle.entry?.length !== 1 || bundle.entry[0]!.resource?.id !== s.studyUid)
          throw new Error(`lookup of study ${s.studyUid} did not find exactly it`);
      });
      return { ms, paths: [...sent], qidoMs };
    };
    let template: string[] = [];
    const replay = (s: SyntheticStudy) =>
      timed(async () => {
        for (const path of template)
          await getJson(agent, `${dicomWeb.origin}${fromTemplate(s, path)}`, 'application/dicom+json');
      });
    // Warm-up of both sides; the first lookup gives the QIDO sequence every miss makes.
    for (const s of rest.slice(0, WARMUP_LOOKUPS)) {
      const { paths } = await lookup(s);
      if (!template.length) template = paths.map((p) => toTemplate(s, p));
      await replay(s);
    }
    if (!template.length) throw new Error('a cache-miss lookup made no QIDO request');

    // Distinct studies on each side (neither warms Orthanc for the other), and the order alternates.
    const measured = rest.slice(WARMUP_LOOKUPS);
    const [apiMs, rawMs, ownMs, bridgeQidoMs]: number[][] = [[], [], [], []];
    for (let i = 0; i < MISS_LOOKUPS; i++) {
      const [a, b] = [measured[2 * i]!, measured[2 * i + 1]!];
      const api = async () => {
        const l = await lookup(a);
        if (l.paths.join('\n') !== template.map((t) => fromTemplate(a, t)).join('\n')) {
          throw new Error(
            `lookup of study ${a.studyUid} made ${l.paths.length} QIDO requests, not the ${template.length} replayed on the raw side`,
          );
        }
        apiMs.push(l.ms);
        bridgeQidoMs.push(l.qidoMs);
        ownMs.push(l.ms - l.qidoMs);
      };
      const raw = async () => void rawMs.push(await replay(b));
      if (i % 2) await raw().then(api);
      else await api().then(raw);
    }

    const [apiMedianMs, rawMedianMs] = [percentile(apiMs, 0.5), percentile(rawMs, 0.5)];
    const limitMs = 1.1 * rawMedianMs + 2;
    return {
      lookup: '/fhir/ImagingStudy?identifier={accession}',
      cacheHit: {
        autocannon: LOAD,
        studyUid: hitStudy!.studyUid,
        requests: r.requests.total,
        requestsPerSecond: Math.round(r.requests.average),
        p50Ms: round(r.latency.p50),
        p99Ms: round(r.latency.p99),
        maxMs: round(r.latency.max),
        non2xx: r.non2xx,
        pacsRequests: hitPacs,
        serverLoopBusy: round(busy),
        serverCpuMsPerRequest: cpu0 === null || cpu1 === null ? null : round((cpu1 - cpu0) / r.requests.total, 3),
      },
      cacheMiss: {
        lookups: MISS_LOOKUPS,
        qidoSequence: template,
        apiMedianMs: round(apiMedianMs),
        apiP90Ms: round(percentile(apiMs, 0.9)),
        rawMedianMs: round(rawMedianMs),
        rawP90Ms: round(percentile(rawMs, 0.9)),
        bridgeQidoMedianMs: round(percentile(bridgeQidoMs, 0.5)),
        bridgeOwnMedianMs: round(percentile(ownMs, 0.5)),
        ratio: round(apiMedianMs / rawMedianMs),
        limitMs: round(limitMs),
      },
      loadAverage,
      targets: { throughput: r.requests.average >= 3000, p99: r.latency.p99 < 20, cacheMiss: apiMedianMs <= limitMs },
    };
  } finally {
    dc.unsubscribe('http.client.request.start', onRequest);
    agent.destroy();
    studyLookup.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
