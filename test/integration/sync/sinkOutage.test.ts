/**
 * A FHIR-server outage is not the studies' fault. A real Orthanc, the real sync, and a real FHIR engine behind a
 * fault proxy: while the proxy answers 500 (or drops every connection) the runs end as failed, "sink unavailable",
 * charge no attempts and dead-letter nothing, however many runs the outage lasts; once the server is back, the next
 * run writes every study. A study the server rejects on its own (4xx, or a 5xx while the server is otherwise up)
 * stays that study's failure.
 */
import type { ImagingStudy } from 'fhir/r4';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { createFhirSink } from '../../../src/sinks/fhir';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService } from '../../../src/sync';
import { generateCorpus, loadStudies, type SyntheticStudy } from '../../fixtures/synthetic';
import { startFaultProxy, type Fault, type FaultProxy } from '../../harness/faultProxy';
import { startFhirServer, type FhirTestServer } from '../../harness/fhirServer';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { daysAgo, SOURCE_ID, sourceConfig } from './common';

let orthanc: OrthancServer;
let fhir: FhirTestServer;
let proxy: FaultProxy;
const stores: SqliteStateStore[] = [];
const MAX_ATTEMPTS = 2;

beforeAll(async () => {
  [orthanc, fhir] = await Promise.all([startOrthanc(), startFhirServer()]);
  proxy = await startFaultProxy(fhir.baseUrl);
}, 60000);

afterEach(() => proxy.clearFaults());

afterAll(async () => {
  stores.forEach((s) => s.close());
  await proxy?.stop();
  await Promise.all([orthanc?.stop(), fhir?.stop()]);
});

/** A bridge with its own store writing to both the store and (through the proxy) the FHIR server. */
function bridge(days: { from: string; count: number }) {
  const store = openSqliteStore(':memory:');
  stores.push(store);
  const fhirSink = createFhirSink({ baseUrl: proxy.via(fhir.baseUrl), retries: 1, backoffMs: 5, maxBackoffMs: 10 });
  const sync = createSyncService({
    config: {
      sources: [sourceConfig(orthanc.dicomWebBase)],
      // A dead letter after 2 charged attempts: 3 runs in an outage would dead-letter everything if charged.
      sync: { lookbackDays: 40, windowDays: 40, backoffBaseSeconds: 0, maxAttempts: MAX_ATTEMPTS },
    },
    store,
    sinks: [createEmbeddedSink(store), fhirSink],
  });
  return { store, sync, days };
}

const inFhir = async (studies: SyntheticStudy[]) => {
  const wanted = new Set(studies.map((s) => s.studyUid));
  return (await fhir.all<ImagingStudy>('ImagingStudy'))
    .map((s) => s.identifier!.find((i) => i.system === 'urn:dicom:uid')!.value!.replace('urn:oid:', ''))
    .filter((uid) => wanted.has(uid))
    .sort();
};

const uidsOf = (studies: SyntheticStudy[]) => studies.map((s) => s.studyUid).sort();

const OUTAGES: [string, Fault, number][] = [
  ['answers 500 to everything', { status: 500 }, 10],
  ['drops every connection', { reset: true }, 15],
  // GET metadata still answers, so only the batch's own results show that the write path is down.
  ['answers 500 to every write', { status: 500, match: (r) => r.method === 'POST' }, 20],
  ['answers 503 to every write', { status: 503, match: (r) => r.method === 'POST' }, 22],
  ['answers 429 to every write', { status: 429, retryAfter: '0', match: (r) => r.method === 'POST' }, 25],
];

describe.each(OUTAGES)('FHIR server that %s for 3 consecutive runs', (_label, fault, ago) => {
  let corpus: SyntheticStudy[];
  let b: ReturnType<typeof bridge>;

  beforeAll(async () => {
    // Each case its own days and seed, so one case's runs never meet another case's studies.
    const from = daysAgo(ago);
    corpus = generateCorpus({ seed: ago, studies: 6, days: { from, count: 3 }, undated: 0 });
    await loadStudies(orthanc, corpus);
    b = bridge({ from, count: 3 });
  });

  it('each run ends failed as "sink unavailable", with no attempt charged and 0 dead letters', async () => {
    proxy.inject({ ...fault, times: Infinity });
    for (let run = 1; run <= 3; run++) {
      const summary = await b.sync.runOnce(SOURCE_ID);
      expect(summary.status).toBe('failed');
      expect(summary.error).toMatch(/^sink unavailable: fhir: /);
      expect(summary.counts.dead ?? 0).toBe(0);
      expect(await b.store.studies.list(SOURCE_ID, 'dead')).toEqual([]);
      const failing = (await b.store.studies.list(SOURCE_ID, 'failing')).filter((s) =>
        uidsOf(corpus).includes(s.studyUid),
      );
      // The batch in hand is kept as pending (retry due now), with no attempt counted.
      expect(failing.length).toBeGreaterThan(0);
      for (const s of failing) expect(s).toMatchObject({ attempts: 0, dead: false });
      expect(failing.every((s) => /sink unavailable/.test(s.lastError ?? ''))).toBe(true);
    }
    expect(await inFhir(corpus)).toEqual([]);
  });

  it('once the server is back, the next run writes every study', async () => {
    proxy.clearFaults();
    const summary = await b.sync.runOnce(SOURCE_ID);
    expect(summary).toMatchObject({ status: 'ok', counts: { failed: 0, dead: 0 } });
    expect(await inFhir(corpus)).toEqual(uidsOf(corpus));
    const states = await b.store.studies.getMany(SOURCE_ID, uidsOf(corpus));
    expect([...states.values()].map((s) => s.status)).toEqual(corpus.map(() => 'synced'));
  });
});

describe.each([
  ['422', 422, 30],
  ['500 while the server otherwise answers', 500, 35],
])('a study the FHIR server rejects on its own (%s) stays that study’s failure', (_label, status, ago) => {
  let corpus: SyntheticStudy[];
  let b: ReturnType<typeof bridge>;

  beforeAll(async () => {
    const from = daysAgo(ago);
    corpus = generateCorpus({ seed: ago, studies: 6, days: { from, count: 3 }, undated: 0 });
    await loadStudies(orthanc, corpus);
    b = bridge({ from, count: 3 });
  });

  it('is charged, retried and dead-lettered after maxAttempts; the others are written', async () => {
    const bad = corpus[0]!;
    // Transactions carrying the bad study fail; the server answers everything else.
    proxy.inject({ status, times: Infinity, match: (r) => r.method === 'POST' && r.body.includes(bad.studyUid) });
    const others = corpus.slice(1);
    for (let run = 1; run <= MAX_ATTEMPTS; run++) {
      const summary = await b.sync.runOnce(SOURCE_ID);
      expect(summary.status).toBe('partial');
      expect(await b.store.studies.get(SOURCE_ID, bad.studyUid)).toMatchObject({
        attempts: run,
        dead: run === MAX_ATTEMPTS,
      });
    }
    expect((await b.store.studies.list(SOURCE_ID, 'dead')).map((s) => s.studyUid)).toEqual([bad.studyUid]);
    expect(await inFhir(others)).toEqual(uidsOf(others));
    expect(await inFhir([bad])).toEqual([]);
  });
});
