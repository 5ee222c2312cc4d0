/**
 * Both sinks enabled: the embedded store and a real FHIR server (@medplum/fhir-router over HTTP). The
 * sync writes each study to both, and an unchanged re-poll sends the FHIR server nothing at all.
 */
import type { ImagingStudy } from 'fhir/r4';
import { createFhirSink } from '../../../src/sinks/fhir';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService } from '../../../src/sync';
import { generateCorpus, loadStudies, makeStudy, type SyntheticStudy } from '../../fixtures/synthetic';
import { startFhirServer, type FhirTestServer } from '../../harness/fhirServer';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { daysAgo, SOURCE_ID, sourceConfig, storedStudy } from './common';

let orthanc: OrthancServer;
let fhir: FhirTestServer;
let store: SqliteStateStore;
let corpus: SyntheticStudy[];

beforeAll(async () => {
  [orthanc, fhir] = await Promise.all([startOrthanc(), startFhirServer()]);
  corpus = generateCorpus({ seed: 11, studies: 8, days: { from: daysAgo(3), count: 4 }, undated: 0 });
  await loadStudies(orthanc, corpus);
  store = openSqliteStore(':memory:');
}, 120000);

afterAll(async () => {
  store?.close();
  await fhir?.stop();
  await orthanc?.stop();
});

it('writes every study to the embedded store and the FHIR server; an unchanged re-poll sends the server nothing', async () => {
  const sinks = [createEmbeddedSink(store), createFhirSink({ baseUrl: fhir.baseUrl })];
  const sync = createSyncService({
    config: { sources: [sourceConfig(orthanc.dicomWebBase)], sync: { lookbackDays: 5 } },
    store,
    sinks,
  });

  const first = await sync.runOnce(SOURCE_ID);
  expect(first).toMatchObject({ status: 'ok', counts: { written: 8, failed: 0 } });
  const onServer = await fhir.all<ImagingStudy>('ImagingStudy');
  expect(onServer).toHaveLength(8);
  expect(await store.resources.listImagingStudies()).toHaveLength(8);
  for (const s of corpus) {
    const uid = `urn:oid:${s.studyUid}`;
    expect(onServer.filter((r) => r.identifier?.some((i) => i.value === uid))).toHaveLength(1);
    expect((await storedStudy(store, s.studyUid))?.identifier?.some((i) => i.value === uid)).toBe(true);
  }

  fhir.resetRequests();
  const again = await sync.runOnce(SOURCE_ID);
  expect(again).toMatchObject({ status: 'ok', counts: { written: 0, unchanged: 8 } });
  expect(fhir.fhirRequestCount()).toBe(0);

  const late = makeStudy({ studyDate: daysAgo(0) });
  await loadStudies(orthanc, [late]);
  const third = await sync.runOnce(SOURCE_ID);
  expect(third).toMatchObject({ status: 'ok', counts: { written: 1, unchanged: 8 } });
  expect(await fhir.all('ImagingStudy')).toHaveLength(9);
  expect(await storedStudy(store, late.studyUid)).toBeDefined();
});
