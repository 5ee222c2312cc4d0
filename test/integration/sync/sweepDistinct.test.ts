/**
 * A sweep's `listed` counts studies, not rows. Among Debian's pydicom samples, the RT Dose files hold Study UID
 * 1.2.999.999.99.9.9999.8888 under PatientID "id11111" with and without a trailing space, which Orthanc keeps as
 * two studies, so its QIDO answers list that UID twice (the quick start's "80 of 81"). Against a real Orthanc
 * holding every sample (as the quick start loads them, with its settings), with the embedded store.
 */
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService, sourceCoverage } from '../../../src/sync';
import { loadStudies, makeStudy } from '../../fixtures/synthetic';
import { loadPydicomSamples } from '../../fixtures/pydicomSamples';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { SOURCE_ID, sourceConfig } from './common';

let orthanc: OrthancServer;
let store: SqliteStateStore;
const synthetic = [makeStudy({ studyUid: '2.25.7701', studyDate: '20200202' }), makeStudy({ studyDate: undefined })];

/** Study-level rows a QIDO search of everything returns, and the distinct UIDs among them. */
async function qidoRows(): Promise<{ rows: number; uids: Set<string> }> {
  const all = (await orthanc.rest.get('/dicom-web/studies')).data as Record<string, { Value?: string[] }>[];
  return { rows: all.length, uids: new Set(all.map((ds) => ds['0020000D']!.Value![0]!)) };
}

beforeAll(async () => {
  orthanc = await startOrthanc();
  await loadPydicomSamples(orthanc);
  await loadStudies(orthanc, synthetic);
  store = openSqliteStore(':memory:');
}, 60000);

afterAll(async () => {
  store?.close();
  await orthanc?.stop();
});

it('counts a Study UID the PACS lists twice once, and the coverage is whole', async () => {
  const { rows, uids } = await qidoRows();
  // The premise: the PACS really lists one UID twice (the samples and Orthanc's keying did not change).
  expect(rows).toBe(uids.size + 1);
  expect(uids.has('1.2.999.999.99.9.9999.8888')).toBe(true);
  const sync = createSyncService({
    config: {
      sources: [sourceConfig(orthanc.dicomWebBase, { mapping: { missingModality: 'OT' } })],
      sync: { windowDays: 3660, sweep: { maxRequestsPerMinute: 100000 } },
    },
    store,
    sinks: [createEmbeddedSink(store)],
  });
  const sweep = await sync.sweep(SOURCE_ID);
  expect(sweep).toMatchObject({ kind: 'sweep', counts: { listed: uids.size } });
  const done = (await store.sweeps.lastComplete(SOURCE_ID))!;
  expect(done.listed).toBe(uids.size);
  expect(done.synced! + done.failing! + done.dead!).toBe(uids.size);
  const coverage = await sourceCoverage(store, SOURCE_ID, new Date());
  expect(coverage.lastSweep).toMatchObject({ listed: uids.size, synced: done.synced });
  // Every study the PACS holds is synced, so nothing is short (80 of 81 was the symptom).
  expect(coverage.lastSweep!.coverage).toBe(done.synced! / uids.size);
  expect(done.synced).toBe(uids.size);
  expect(coverage.health).toBe('ok');
});
