/**
 * A full bridge over real parts — Orthanc (behind a fault-injecting proxy), the sync with the embedded
 * store and a FHIR server (@medplum/fhir-router over HTTP), the lookup API and the ops endpoints on one
 * app — run over fixtures with known patient names (Latin and Chinese), IDs and birth dates:
 * - /metrics exposes the named series with the numbers the store, sources and sinks report;
 * - no application or audit log line holds a patient's name, ID or birth date.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import axios, { type AxiosInstance } from 'axios';
import { createApiApp, createStudyLookup, type ApiApp } from '../../../../src/api/app';
import { createAuditLogger } from '../../../../src/api/audit';
import { createAuthenticator, sha256Hex } from '../../../../src/api/auth';
import { parseApiConfig } from '../../../../src/api/config';
import { adminAuth, ADMIN_SCOPE, createOpsRouter } from '../../../../src/api/ops';
import { createPacsSource } from '../../../../src/dicomweb';
import { createLogger } from '../../../../src/log';
import { createMetrics } from '../../../../src/metrics';
import { createEmbeddedSink } from '../../../../src/sinks/embeddedSink';
import { createFhirSink, type FhirSink } from '../../../../src/sinks/fhir';
import { openSqliteStore, type SqliteStateStore } from '../../../../src/state';
import { createSyncService, type RunSummary, type SyncService } from '../../../../src/sync';
import {
  generateCorpus,
  loadStudies,
  makeStudy,
  type SyntheticPatient,
  type SyntheticStudy,
} from '../../../fixtures/synthetic';
import { startFhirServer, type FhirTestServer } from '../../../harness/fhirServer';
import { startOrthanc, type OrthancServer } from '../../../harness/orthanc';
import { levelOf, startRecordingProxy, type RecordingProxy } from '../../../harness/recordingProxy';
import { daysAgo, SOURCE_ID, sourceConfig } from '../../sync/common';
import { parsePrometheus, sampleSum, sampleValue, type Sample } from '../../metrics/promText';

const P = 'pacs_fhir_bridge_';
const KEY = 'observability-test-key';
const PATIENT_SYSTEM = `urn:pacs-fhir-bridge:${SOURCE_ID}:patient-id`;

let orthanc: OrthancServer;
let proxy: RecordingProxy;
let fhir: FhirTestServer;
let dir: string;
let store: SqliteStateStore;
let sync: SyncService;
let fhirSink: FhirSink;
let app: ApiApp;
let lookup: ReturnType<typeof createStudyLookup>;
let server: Server;
let http: AxiosInstance;
let corpus: SyntheticStudy[];
let failing: SyntheticStudy;
let run: RunSummary;
const metrics = createMetrics();
const appLines: string[] = [];
const auditLines: string[] = [];

const known: SyntheticPatient[] = [
  {
    id: 'TW-PID-88231',
    alphabetic: 'Chen^Da Wen',
    ideographic: '陳^大文',
    birthDate: '19650412',
    sex: 'M',
    issuer: 'TW-HOSP-A',
  },
  { id: 'A123456789', alphabetic: 'Lin^Mei Hua', ideographic: '林^美華', birthDate: '19881231', sex: 'F' },
  { id: 'H-000417', ideographic: '歐陽^娜娜', birthDate: '20010101', sex: 'F' },
];

function capture(lines: string[]): Writable {
  return new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
}

beforeAll(async () => {
  [orthanc, fhir] = await Promise.all([startOrthanc(), startFhirServer()]);
  proxy = await startRecordingProxy(orthanc.dicomWebBase);
  corpus = [
    ...generateCorpus({ seed: 31, studies: 10, days: { from: daysAgo(3), count: 4 }, undated: 1 }),
    ...known.map((patient, i) => makeStudy({ patient, studyDate: daysAgo(i), accession: `ACC-OBS-${i}` })),
  ];
  failing = makeStudy({
    patient: { id: 'FAIL-PID-5521', alphabetic: 'Wang^Xiao Ming', ideographic: '王^小明', birthDate: '19770707' },
    studyDate: daysAgo(1),
  });
  await loadStudies(orthanc, [...corpus, failing]);
  // The PACS answers 500 to detail queries naming the failing study: a failure logged with its reason.
  proxy.failWhen((r) => levelOf(r.url) !== 'studies' && decodeURIComponent(r.url).includes(failing.studyUid));

  dir = mkdtempSync(path.join(os.tmpdir(), 'h7-observe-'));
  store = openSqliteStore(path.join(dir, 'bridge.sqlite'));
  const logger = createLogger({ level: 'debug', destination: capture(appLines) });
  const cfg = sourceConfig(proxy.via(orthanc.dicomWebBase), {
    mapping: { patient: { issuerSystems: { 'TW-HOSP-A': 'urn:oid:2.16.886.101.20003' } } },
  });
  fhirSink = createFhirSink(
    { baseUrl: fhir.baseUrl, patientLinking: { mode: 'create', fallback: 'identifier' } },
    { logger, metrics },
  );
  sync = createSyncService({
    config: { sources: [cfg], sync: { lookbackDays: 5, windowDays: 7, maxAttempts: 3, backoffBaseSeconds: 0 } },
    store,
    sinks: [createEmbeddedSink(store), fhirSink],
    sourceFactory: (c) => createPacsSource(c, { logger, metrics }),
    logger,
  });

  const apiConfig = parseApiConfig({
    auth: {
      type: 'apiKey',
      keys: [
        {
          client: 'viewer',
          sha256: sha256Hex(KEY),
          scopes: ['system/ImagingStudy.read', 'system/Endpoint.read', ADMIN_SCOPE],
        },
      ],
    },
    patientIdRule: { prefix: 'pid-' },
    rateLimit: { enabled: false },
  });
  lookup = createStudyLookup({
    config: apiConfig,
    sources: [{ config: cfg, pacs: createPacsSource(cfg, { logger }) }],
    store: store.resources,
    logger,
  });
  app = createApiApp({ config: apiConfig, lookup, logger, audit: createAuditLogger(capture(auditLines)) });
  app.use(
    createOpsRouter({
      store,
      sources: [sync.source(SOURCE_ID)],
      fhirSinks: [fhirSink],
      auth: adminAuth(createAuthenticator(apiConfig.auth)),
      metrics,
      caches: lookup.caches(),
      logger,
    }),
  );
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  http = axios.create({
    baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    validateStatus: () => true,
    headers: { 'X-API-Key': KEY },
  });

  // The undated study too (a poll lists it only when asked; the sweep always does).
  run = await sync.runOnce(SOURCE_ID, { undated: true });
}, 120_000);

afterAll(async () => {
  lookup?.close();
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  store?.close();
  await proxy?.stop();
  await Promise.all([orthanc?.stop(), fhir?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function scrape(): Promise<Sample[]> {
  const res = await http.get('/metrics');
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain/);
  return parsePrometheus(res.data);
}

describe('after a real sync against Orthanc', () => {
  it('the sync ran: every study but the failing one is in the store and on the FHIR server', async () => {
    expect(run).toMatchObject({
      status: 'partial',
      counts: { found: corpus.length + 1, written: corpus.length, failed: 1 },
    });
    expect(await store.studies.counts(SOURCE_ID)).toMatchObject({ synced: corpus.length, failing: 1 });
    expect(await fhir.all('ImagingStudy')).toHaveLength(corpus.length);
  });

  it('/metrics exposes the named series with the numbers the store, the source and the sink report', async () => {
    const s = await scrape();
    const source = { source: SOURCE_ID };
    expect(sampleValue(s, `${P}studies_discovered_total`, source)).toBe(run.counts.found);
    expect(sampleValue(s, `${P}studies_written_total`, source)).toBe(run.counts.written);
    expect(sampleValue(s, `${P}studies_failed_total`, source)).toBe(1);
    expect(sampleValue(s, `${P}studies_dead_lettered_total`, source)).toBe(0);
    expect(sampleValue(s, `${P}sync_runs_total`, { ...source, kind: 'poll', status: 'partial' })).toBe(1);
    expect(sampleValue(s, `${P}sync_run_duration_seconds_count`, { ...source, kind: 'poll', status: 'partial' })).toBe(
      1,
    );
    const lag = sampleValue(s, `${P}sync_lag_seconds`, source);
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(lag).toBeLessThan(600);

    const counts = await store.studies.counts(SOURCE_ID);
    expect(sampleValue(s, `${P}studies`, { ...source, state: 'synced' })).toBe(counts.synced);
    expect(sampleValue(s, `${P}studies`, { ...source, state: 'failing' })).toBe(counts.failing);
    expect(sampleValue(s, `${P}dead_letters`, source)).toBe(0);

    const pacs = sync.source(SOURCE_ID).stats;
    expect(pacs.requests.studies).toBeGreaterThan(0);
    expect(sampleValue(s, `${P}pacs_requests_total`, { ...source, kind: 'studies' })).toBe(pacs.requests.studies);
    expect(sampleValue(s, `${P}pacs_requests_total`, { ...source, kind: 'series' })).toBe(pacs.requests.series);
    expect(sampleValue(s, `${P}pacs_retries_total`, source)).toBe(pacs.retries);

    const sinkStats = fhirSink.stats();
    expect(sinkStats.requests.byKind.transaction).toBeGreaterThan(0);
    expect(sampleValue(s, `${P}fhir_requests_total`, { server: 'fhir', kind: 'transaction' })).toBe(
      sinkStats.requests.byKind.transaction,
    );
    expect(sampleSum(s, `${P}fhir_requests_total`, { server: 'fhir' })).toBe(
      sinkStats.requests.total + sinkStats.tokenRequests,
    );

    // The clients given this instance record every request they make in the latency histograms.
    const { token, ...pacsRequests } = pacs.requests;
    expect(token).toBe(0);
    const pacsTotal = Object.values(pacsRequests).reduce((a, b) => a + b, 0);
    expect(sampleSum(s, `${P}qido_request_duration_seconds_count`, source)).toBe(pacsTotal);
    expect(sampleSum(s, `${P}qido_request_duration_seconds_count`, { ...source, level: 'series' })).toBe(
      pacs.requests.series,
    );
    expect(sampleSum(s, `${P}fhir_request_duration_seconds_count`, { server: 'fhir' })).toBe(sinkStats.requests.total);
    const res = await http.get('/metrics');
    // Process metrics only where asked for (serve's instance); this one has none.
    expect(res.data).not.toContain(`${P}process_cpu`);
  });

  it('the lookup cache hit ratio follows the API: a repeated search is a hit', async () => {
    const query = `/fhir/ImagingStudy?patient.identifier=${encodeURIComponent(`${PATIENT_SYSTEM}|${known[1].id}`)}`;
    expect((await http.get(query)).status).toBe(200);
    expect((await http.get(query)).status).toBe(200);
    const s = await scrape();
    // The repeat is answered as rendered the first time; the pages cache saw the first one only.
    const responses = lookup.rendered!;
    expect(responses.hits).toBeGreaterThanOrEqual(1);
    expect(sampleValue(s, `${P}cache_hits_total`, { cache: 'api-responses' })).toBe(responses.hits);
    expect(sampleValue(s, `${P}cache_misses_total`, { cache: 'api-responses' })).toBe(responses.misses);
    expect(sampleValue(s, `${P}cache_hit_ratio`, { cache: 'api-responses' })).toBeCloseTo(
      responses.hits / (responses.hits + responses.misses),
    );
    expect(sampleValue(s, `${P}cache_misses_total`, { cache: 'api-pages' })).toBe(lookup.caches()['api-pages'].misses);
  });

  it('a second run is counted once more, and the counters only grow', async () => {
    const before = await scrape();
    proxy.failWhen(undefined);
    const second = await sync.runOnce(SOURCE_ID);
    expect(second).toMatchObject({ status: 'ok', counts: { written: 1 } });
    const after = await scrape();
    const source = { source: SOURCE_ID };
    expect(sampleValue(after, `${P}studies_written_total`, source)).toBe(
      sampleValue(before, `${P}studies_written_total`, source)! + 1,
    );
    expect(sampleValue(after, `${P}studies_discovered_total`, source)).toBe(run.counts.found! + second.counts.found!);
    expect(sampleSum(after, `${P}sync_runs_total`, source)).toBe(2);
    expect(sampleValue(after, `${P}studies`, { ...source, state: 'failing' })).toBe(0);
  });
});

describe('logs without patient data', () => {
  const later: SyntheticPatient[] = [];
  const everyPatient = () => [...corpus.map((s) => s.patient), failing.patient, ...later];

  /** What must never be in a log line: IDs, names (whole and by component), birth dates in DICOM and FHIR form. */
  function forbiddenValues(): { value: string; pattern: RegExp }[] {
    const out = new Map<string, RegExp>();
    const word = (v: string) =>
      new RegExp(`(^|[^A-Za-z0-9])${v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^A-Za-z0-9])`);
    for (const p of everyPatient()) {
      out.set(p.id, word(p.id));
      for (const pn of [p.alphabetic, p.ideographic].filter((x): x is string => Boolean(x))) {
        out.set(pn, word(pn));
        const parts = pn.split('^').filter(Boolean);
        out.set(parts.join(' '), word(parts.join(' ')));
        out.set(parts.join(''), word(parts.join('')));
        // Each name component: Chinese ones whole (陳, 大文), Latin ones as words of 3+ letters.
        for (const part of parts)
          if (/[^\x00-\x7f]/.test(part) || part.length >= 3)
            out.set(part, /[^\x00-\x7f]/.test(part) ? new RegExp(part) : word(part));
      }
      if (p.birthDate) {
        out.set(p.birthDate, word(p.birthDate));
        const iso = `${p.birthDate.slice(0, 4)}-${p.birthDate.slice(4, 6)}-${p.birthDate.slice(6, 8)}`;
        out.set(iso, word(iso));
      }
    }
    return [...out].map(([value, pattern]) => ({ value, pattern }));
  }

  it('a sync, lookups (good, bad, unauthorized) and a replay leave lines that name no patient', async () => {
    proxy.failWhen(undefined);
    // Lookups by every patient: by identifier, by Patient/<id>, reads of each found study.
    for (const p of everyPatient()) {
      const system = p.issuer === 'TW-HOSP-A' ? 'urn:oid:2.16.886.101.20003' : PATIENT_SYSTEM;
      const bundle = await http.get(
        `/fhir/ImagingStudy?patient.identifier=${encodeURIComponent(`${system}|${p.id}`)}&_include=ImagingStudy:endpoint`,
      );
      expect(bundle.status).toBe(200);
      expect((await http.get(`/fhir/ImagingStudy?patient=Patient/pid-${encodeURIComponent(p.id)}`)).status).toBe(200);
      for (const e of bundle.data.entry ?? [])
        if (e.resource.resourceType === 'ImagingStudy')
          expect((await http.get(`/fhir/ImagingStudy/${e.resource.id}`)).status).toBe(200);
    }
    const chen = known[0];
    // Patient data in places it does not belong: unknown parameters, wildcards, strict handling, no key.
    const bad = [
      `/fhir/ImagingStudy?patient:identifier=${encodeURIComponent(`${chen.id}*`)}`,
      `/fhir/ImagingStudy?patient.name=${encodeURIComponent('陳大文')}&patient:identifier=${encodeURIComponent(chen.id)}`,
      `/fhir/ImagingStudy?birthdate=${chen.birthDate}&patient:identifier=${encodeURIComponent(chen.id)}`,
      `/fhir/ImagingStudy?patient:identifier=${encodeURIComponent(`${chen.id}\n陳^大文`)}`,
      `/fhir/ImagingStudy/${encodeURIComponent(chen.id)}`,
    ];
    for (const url of bad) await http.get(url);
    expect((await http.get(bad[1], { headers: { Prefer: 'handling=strict' } })).status).toBe(400);
    expect(
      (
        await http.get(`/fhir/ImagingStudy?patient:identifier=${encodeURIComponent(chen.id)}`, {
          headers: { 'X-API-Key': 'wrong' },
        })
      ).status,
    ).toBe(401);

    // A study that always fails becomes a dead letter and is replayed through the ops API.
    const doomed = makeStudy({
      patient: { id: 'DOOMED-7781', alphabetic: 'Huang^Zhi Qiang', ideographic: '黃^志強', birthDate: '19500505' },
      studyDate: daysAgo(0),
    });
    later.push(doomed.patient);
    await loadStudies(orthanc, [doomed]);
    proxy.failWhen((r) => levelOf(r.url) !== 'studies' && decodeURIComponent(r.url).includes(doomed.studyUid));
    for (let i = 0; i < 3; i++) await sync.runOnce(SOURCE_ID);
    expect((await store.studies.list(SOURCE_ID, 'dead')).map((d) => d.studyUid)).toEqual([doomed.studyUid]);
    const replay = await http.post('/status/replay', { source: SOURCE_ID, study: doomed.studyUid });
    expect(replay.data).toEqual({ source: SOURCE_ID, study: doomed.studyUid, replayed: 1 });
    proxy.failWhen(undefined);
    await sync.runOnce(SOURCE_ID);
    expect((await store.studies.get(SOURCE_ID, doomed.studyUid))?.status).toBe('synced');

    // The lines exist (so the check below is not vacuous) and carry the source and run id during a sync.
    expect(appLines.length).toBeGreaterThan(20);
    expect(auditLines.length).toBeGreaterThan(everyPatient().length);
    const parsed = appLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const runLines = parsed.filter((l) => l.msg === 'run started' || l.msg === 'run finished');
    expect(runLines.length).toBe(2 * (await store.runs.listRuns(SOURCE_ID, 100)).length);
    for (const l of runLines) expect(l).toMatchObject({ source: SOURCE_ID, runId: expect.any(String) });
    expect(parsed.some((l) => JSON.stringify(l).includes(doomed.studyUid))).toBe(true);

    const leaks: string[] = [];
    for (const [kind, lines] of [
      ['app', appLines],
      ['audit', auditLines],
    ] as const) {
      for (const line of lines)
        for (const f of forbiddenValues())
          if (f.pattern.test(line)) leaks.push(`${kind} log holds "${f.value}": ${line.slice(0, 300)}`);
    }
    expect(leaks).toEqual([]);
  });
});
