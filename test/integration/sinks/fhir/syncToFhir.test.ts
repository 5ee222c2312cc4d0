/**
 * End to end: synthetic studies in a real Orthanc → the sync → the FHIR-server sink → a real FHIR
 * engine over HTTP. Synced twice (also by a second bridge with an empty local store), each study is
 * one ImagingStudy; a changed study is updated in place; the FHIR requests per study are reported.
 */
import type { Endpoint, ImagingStudy } from 'fhir/r4';
import { createFhirSink, type FhirSink } from '../../../../src/sinks/fhir';
import { openSqliteStore, type SqliteStateStore } from '../../../../src/state';
import { createSyncService } from '../../../../src/sync';
import { generateCorpus, loadStudies, makeInstance, SOP_CLASS, type SyntheticStudy } from '../../../fixtures/synthetic';
import { startFhirServer, type FhirTestServer } from '../../../harness/fhirServer';
import { startOrthanc, type OrthancServer } from '../../../harness/orthanc';
import { daysAgo, instancesOf, SOURCE_ID, sourceConfig } from '../../sync/common';

let orthanc: OrthancServer;
let fhir: FhirTestServer;
let corpus: SyntheticStudy[];
const stores: SqliteStateStore[] = [];

beforeAll(async () => {
  [orthanc, fhir] = await Promise.all([startOrthanc(), startFhirServer()]);
  corpus = generateCorpus({ seed: 11, studies: 12, days: { from: daysAgo(4), count: 5 }, undated: 0 });
  await loadStudies(orthanc, corpus);
});

afterAll(async () => {
  stores.forEach((s) => s.close());
  await Promise.all([orthanc?.stop(), fhir?.stop()]);
});

function bridge(): { sink: FhirSink; store: SqliteStateStore; sync: ReturnType<typeof createSyncService> } {
  const store = openSqliteStore(':memory:');
  stores.push(store);
  const sink = createFhirSink({ baseUrl: fhir.baseUrl, batchSize: 8 });
  const sync = createSyncService({
    config: {
      sources: [sourceConfig(orthanc.dicomWebBase)],
      sync: { lookbackDays: 10, windowDays: 5, batchSize: 20, backoffBaseSeconds: 0, maxAttempts: 3 },
    },
    store,
    sinks: [sink],
  });
  return { sink, store, sync };
}

const byUid = (studies: ImagingStudy[]) =>
  new Map(
    studies.map((s) => [s.identifier!.find((i) => i.system === 'urn:dicom:uid')!.value!.replace('urn:oid:', ''), s]),
  );

let first: ReturnType<typeof bridge>;
let second: ReturnType<typeof bridge>;
let idsAfterFirstSync: Map<string, string>;

describe('Orthanc → sync → FHIR server', () => {
  it('writes one ImagingStudy per study, all pointing at the one Endpoint', async () => {
    first = bridge();
    const run = await first.sync.runOnce(SOURCE_ID);
    expect(run).toMatchObject({ status: 'ok', counts: { found: 12, written: 12, failed: 0 } });

    const studies = await fhir.all<ImagingStudy>('ImagingStudy');
    expect(studies).toHaveLength(12);
    const stored = byUid(studies);
    expect([...stored.keys()].sort()).toEqual(corpus.map((s) => s.studyUid).sort());
    const endpoints = await fhir.all<Endpoint>('Endpoint');
    expect(endpoints).toHaveLength(1);
    for (const study of corpus) {
      const s = stored.get(study.studyUid)!;
      expect(s.numberOfInstances).toBe(instancesOf(study));
      expect(s.endpoint).toEqual([{ reference: `Endpoint/${endpoints[0].id}` }]);
      expect(s.subject?.identifier?.value).toBeTruthy();
    }
    idsAfterFirstSync = new Map([...stored].map(([uid, s]) => [uid, s.id!]));

    const stats = first.sink.stats();
    expect(stats.requests.total).toBe(fhir.fhirRequestCount());
    // metadata + Endpoint once, then transactions of up to 8 studies per batch the sync hands over.
    expect(stats.requests.byKind).toMatchObject({ metadata: 1, endpoint: 1, lookup: 0 });
    expect(stats.requests.byKind.transaction).toBe(
      fhir.requests.filter((r) => r.method === 'POST' && r.path === '').length,
    );
    console.log(
      `first sync: ${stats.requests.total} FHIR requests for 12 studies = ${stats.requestsPerStudy!.toFixed(3)} per study`,
    );
  });

  it('syncing again leaves exactly one ImagingStudy per study, whether or not the bridge remembers', async () => {
    // The same bridge: nothing changed, so nothing is sent to the FHIR server.
    fhir.resetRequests();
    const again = await first.sync.runOnce(SOURCE_ID);
    expect(again.counts).toMatchObject({ unchanged: 12, written: 0 });
    expect(fhir.fhirRequestCount()).toBe(0);

    // A second bridge with an empty store rewrites everything: the conditional updates find the same resources.
    second = bridge();
    const run = await second.sync.runOnce(SOURCE_ID);
    expect(run.counts).toMatchObject({ written: 12, failed: 0 });
    const studies = await fhir.all<ImagingStudy>('ImagingStudy');
    expect(studies).toHaveLength(12);
    expect(new Map([...byUid(studies)].map(([uid, s]) => [uid, s.id]))).toEqual(idsAfterFirstSync);
    expect(await fhir.all('Endpoint')).toHaveLength(1);
    console.log(
      `re-sync by a fresh bridge: ${second.sink.stats().requestsPerStudy!.toFixed(3)} FHIR requests per study`,
    );
  });

  it('a changed study is updated in place', async () => {
    const grown = corpus[3];
    grown.series[0].instances.push(makeInstance({ sopClassUid: SOP_CLASS[grown.series[0].modality], number: 77 }));
    await loadStudies(orthanc, [grown]);
    const before = byUid(await fhir.all<ImagingStudy>('ImagingStudy')).get(grown.studyUid)!;

    fhir.resetRequests();
    const run = await second.sync.runOnce(SOURCE_ID);
    expect(run.counts).toMatchObject({ written: 1, unchanged: 11 });
    const after = byUid(await fhir.all<ImagingStudy>('ImagingStudy')).get(grown.studyUid)!;
    expect(after.id).toBe(before.id);
    expect(after.meta?.versionId).not.toBe(before.meta?.versionId);
    expect(after.numberOfInstances).toBe(instancesOf(grown));
    expect(await fhir.all('ImagingStudy')).toHaveLength(12);
    // One transaction for the one changed study; the Endpoint is not written again.
    expect(fhir.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST ']);
  });

  it('a bridge holding a stale version gets a conflict, not a silent overwrite, and succeeds on retry', async () => {
    // The first bridge last wrote these studies before the second bridge rewrote them.
    const grown = corpus[3];
    const run = await first.sync.runOnce(SOURCE_ID);
    expect(run.counts).toMatchObject({ failed: 1, written: 0 });
    expect(await first.store.studies.get(SOURCE_ID, grown.studyUid)).toMatchObject({
      status: 'failing',
      lastError: expect.stringMatching(/412|Precondition Failed/),
    });

    const retry = await first.sync.runOnce(SOURCE_ID);
    expect(retry.counts).toMatchObject({ written: 1, failed: 0 });
    expect(await fhir.all('ImagingStudy')).toHaveLength(12);
  });
});
