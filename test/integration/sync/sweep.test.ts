/**
 * The full-range sweep against a real Orthanc and a real FHIR server (feed off: polls and sweeps only):
 * late arrivals with an old StudyDate, late changes to old studies (instances, a series, a corrected
 * description), deletions by the deletion policy, resuming after a stop, and what it costs in requests.
 */
import type { ImagingStudy } from 'fhir/r4';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { createFhirSink } from '../../../src/sinks/fhir';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService, sourceCoverage, type SyncConfigInput } from '../../../src/sync';
import { generateCorpus, loadStudies, makeInstance, makeSeries, makeStudy, SOP_CLASS } from '../../fixtures/synthetic';
import { startFhirServer, type FhirTestServer } from '../../harness/fhirServer';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { startRecordingProxy, type RecordingProxy } from '../../harness/recordingProxy';
import { daysAgo, deleteFromOrthanc, instancesOf, SOURCE_ID, sourceConfig, storedStudy } from './common';

let orthanc: OrthancServer;
let fhir: FhirTestServer;
let proxy: RecordingProxy;
let store: SqliteStateStore;
const recent = generateCorpus({ seed: 23, studies: 6, days: { from: daysAgo(2), count: 3 }, undated: 1 });
const oldA = makeStudy({ studyUid: '2.25.1301', studyDate: '20190601', accession: 'OLD-A' });
const oldB = makeStudy({ studyUid: '2.25.1302', studyDate: '20180301', accession: 'OLD-B' });
const oldC = makeStudy({ studyUid: '2.25.1303', studyDate: '20150101', accession: 'OLD-C' });
// Sweeps unpaced here, except where the budget is what a test is about.
const baseSync: SyncConfigInput = { lookbackDays: 3, backoffBaseSeconds: 0, sweep: { maxRequestsPerMinute: 100000 } };

function service(sync: SyncConfigInput = {}, over: { store?: SqliteStateStore; pageSize?: number } = {}) {
  const s = over.store ?? store;
  const sinks = over.store
    ? [createEmbeddedSink(s)]
    : [createEmbeddedSink(s), createFhirSink({ baseUrl: fhir.baseUrl })];
  return createSyncService({
    config: {
      sources: [sourceConfig(proxy.via(orthanc.dicomWebBase), over.pageSize ? { pageSize: over.pageSize } : {})],
      sync: { ...baseSync, ...sync },
    },
    store: s,
    sinks,
  });
}

async function onServer(uid: string): Promise<ImagingStudy | undefined> {
  const all = await fhir.all<ImagingStudy>('ImagingStudy');
  return all.find((r) => r.identifier?.some((i) => i.value === `urn:oid:${uid}`));
}

/** StudyDate values of the study-level requests recorded since the last reset. */
function listedRanges(): string[] {
  return proxy.requests
    .filter((r) => r.level === 'studies')
    .map((r) => new URLSearchParams(r.url.split('?')[1] ?? '').get('00080020'))
    .filter((d): d is string => !!d && d !== '""');
}

beforeAll(async () => {
  [orthanc, fhir] = await Promise.all([startOrthanc(), startFhirServer()]);
  proxy = await startRecordingProxy(orthanc.dicomWebBase);
  await loadStudies(orthanc, [...recent, oldA, oldB, oldC]);
  store = openSqliteStore(':memory:');
}, 120000);

afterAll(async () => {
  store?.close();
  await proxy?.stop();
  await fhir?.stop();
  await orthanc?.stop();
});

describe('the full-range sweep', () => {
  it('a first sweep syncs every study a poll cannot see (old StudyDates, undated) and records its coverage', async () => {
    const poll = await service().runOnce(SOURCE_ID);
    expect(poll).toMatchObject({ status: 'ok', counts: { written: 5 } });
    expect(await store.sweeps.lastComplete(SOURCE_ID)).toBeUndefined();
    expect((await sourceCoverage(store, SOURCE_ID, new Date())).health).toBe('never-swept');

    const sweep = await service().sweep(SOURCE_ID);
    expect(sweep).toMatchObject({ kind: 'sweep', status: 'ok', counts: { listed: 9, written: 4, unchanged: 5 } });
    for (const s of [oldA, oldB, oldC, recent[5]!]) expect(await storedStudy(store, s.studyUid)).toBeDefined();
    expect(await store.sweeps.lastComplete(SOURCE_ID)).toMatchObject({ listed: 9, synced: 9, failing: 0, dead: 0 });
    expect(await sourceCoverage(store, SOURCE_ID, new Date())).toMatchObject({
      health: 'ok',
      lastSweep: { listed: 9, synced: 9, coverage: 1 },
      freshness: { samples: 9 },
    });
    // Three days on without another sweep: flagged.
    expect((await sourceCoverage(store, SOURCE_ID, new Date(Date.now() + 3 * 86_400_000))).health).toBe('overdue');
  });

  it('an old-dated study stored after a full sync: polls never list it, the sweep syncs it to the store and the FHIR server', async () => {
    const late = makeStudy({ studyUid: '2.25.1304', studyDate: '20190101', accession: 'LATE-1' });
    await loadStudies(orthanc, [late]);
    const poll = await service().runOnce(SOURCE_ID);
    expect(poll).toMatchObject({ status: 'ok', counts: { written: 0 } });
    expect(await storedStudy(store, late.studyUid)).toBeUndefined();

    const sweep = await service().sweep(SOURCE_ID);
    expect(sweep).toMatchObject({ status: 'ok', counts: { listed: 10, written: 1, unchanged: 9, vanished: 0 } });
    expect(await storedStudy(store, late.studyUid)).toMatchObject({ numberOfInstances: instancesOf(late) });
    expect(await onServer(late.studyUid)).toMatchObject({ numberOfInstances: instancesOf(late) });
    // Freshness: from the sweep's sighting to the write, recorded per study.
    expect(await store.studies.get(SOURCE_ID, late.studyUid)).toMatchObject({
      firstSeen: expect.any(String),
      syncedAt: expect.any(String),
      pendingSince: null,
    });
    expect((await store.studies.freshnessSince(SOURCE_ID, new Date(Date.now() - 60_000))).length).toBeGreaterThan(0);
  });

  it('new instances, a new series and a corrected description on old studies reach the store and the FHIR server', async () => {
    oldA.series[0]!.instances.push(makeInstance({ sopClassUid: SOP_CLASS[oldA.series[0]!.modality], number: 77 }));
    oldB.series.push(makeSeries({ modality: 'MR', instances: 2, description: 'late series' }));
    await loadStudies(orthanc, [oldA, oldB]);
    // A correction at the PACS: the study is stored again, same UIDs, new description.
    await deleteFromOrthanc(orthanc, oldC.studyUid);
    oldC.description = 'Corrected description';
    await loadStudies(orthanc, [oldC]);

    expect(await service().runOnce(SOURCE_ID)).toMatchObject({ status: 'ok', counts: { written: 0 } });
    const sweep = await service().sweep(SOURCE_ID);
    expect(sweep).toMatchObject({ status: 'ok', counts: { written: 3, vanished: 0 } });

    expect(await storedStudy(store, oldA.studyUid)).toMatchObject({ numberOfInstances: instancesOf(oldA) });
    expect(await onServer(oldA.studyUid)).toMatchObject({ numberOfInstances: instancesOf(oldA) });
    expect(await storedStudy(store, oldB.studyUid)).toMatchObject({ numberOfSeries: oldB.series.length });
    expect(await onServer(oldB.studyUid)).toMatchObject({ numberOfSeries: oldB.series.length });
    expect(await storedStudy(store, oldC.studyUid)).toMatchObject({ description: 'Corrected description' });
    expect(await onServer(oldC.studyUid)).toMatchObject({ description: 'Corrected description' });
  });

  it('a study deleted from the PACS is handled by the sweep as the deletion policy says', async () => {
    await deleteFromOrthanc(orthanc, oldA.studyUid);
    // Polls never decide deletions.
    await service({ reconcile: { deletion: 'entered-in-error' } }).runOnce(SOURCE_ID);
    expect((await store.studies.get(SOURCE_ID, oldA.studyUid))?.status).toBe('synced');

    const ignored = await service().sweep(SOURCE_ID);
    expect(ignored).toMatchObject({ status: 'ok', counts: { vanished: 1, removed: 0 } });
    expect((await store.studies.get(SOURCE_ID, oldA.studyUid))?.status).toBe('synced');

    const marked = await service({ reconcile: { deletion: 'entered-in-error' } }).sweep(SOURCE_ID);
    expect(marked).toMatchObject({ status: 'ok', counts: { vanished: 1, removed: 1 } });
    expect((await store.studies.get(SOURCE_ID, oldA.studyUid))?.status).toBe('removed');
    expect(await onServer(oldA.studyUid)).toMatchObject({ status: 'entered-in-error' });
    expect(await store.sweeps.lastComplete(SOURCE_ID)).toMatchObject({ listed: 9, synced: 9, vanished: 1 });

    // Once removed, it is no longer counted as vanished.
    const again = await service({ reconcile: { deletion: 'entered-in-error' } }).sweep(SOURCE_ID);
    expect(again.counts).toMatchObject({ vanished: 0, written: 0 });
  });

  it('an unchanged sweep lists every study in about one request per page, paced by its budget, and writes nothing', async () => {
    const pageSize = 3;
    const fresh = openSqliteStore(':memory:');
    try {
      expect(await service({}, { store: fresh, pageSize }).sweep(SOURCE_ID)).toMatchObject({ status: 'ok' });
      proxy.reset();
      // 300 requests a minute: one every 200 ms.
      const sweep = await service({ sweep: { maxRequestsPerMinute: 300 } }, { store: fresh, pageSize }).sweep(
        SOURCE_ID,
      );
      const ms = Date.parse(sweep.endedAt) - Date.parse(sweep.startedAt);
      expect(ms).toBeGreaterThanOrEqual((proxy.requests.length - 1) * 200 - 50);
      expect(sweep).toMatchObject({ status: 'ok', counts: { listed: 9, written: 0, fetched: 0 } });
      const counts = proxy.counts();
      expect(counts).toMatchObject({ series: 0, instances: 0 });
      // Floor: pages of 3 over the 8 dated studies, one after another (3 pages, the last one short) …
      const floor = Math.floor(8 / pageSize) + 1;
      // … plus the undated part: Empty Value Matching (Orthanc ignores it), a scan of UIDs and dates, the undated row.
      expect(listedRanges().length).toBeLessThanOrEqual(Math.ceil(1.1 * floor) + 1);
      expect(counts.studies).toBeLessThanOrEqual(listedRanges().length + 3);
    } finally {
      fresh.close();
    }
  });

  it('a stopped sweep resumes where its last settled window ended, and completes with the whole listing', async () => {
    const fresh = openSqliteStore(':memory:');
    try {
      // One study a window (pages of 2, a target of one study), slowed down so it can be stopped mid-way.
      const slow = service({ windowPages: 1 }, { store: fresh, pageSize: 2 });
      proxy.delayMs = 150;
      const running = slow.sweep(SOURCE_ID);
      while (!(await fresh.sweeps.current(SOURCE_ID))?.throughDate) await new Promise((r) => setTimeout(r, 20));
      await slow.stop();
      const stopped = await running;
      proxy.delayMs = 0;
      expect(stopped.status).toBe('interrupted');
      const through = (await fresh.sweeps.current(SOURCE_ID))!.throughDate!;
      expect(through < '99991231').toBe(true);

      proxy.reset();
      const resumed = await service({ windowPages: 1 }, { store: fresh, pageSize: 2 }).sweep(SOURCE_ID);
      expect(resumed).toMatchObject({ status: 'ok' });
      // Nothing before the checkpoint is listed again.
      for (const range of listedRanges()) expect(range.split('-')[0]! > through).toBe(true);
      expect(await fresh.sweeps.lastComplete(SOURCE_ID)).toMatchObject({ listed: 9, synced: 9, vanished: 0 });
      expect((await fresh.studies.counts(SOURCE_ID)).synced).toBe(9);
    } finally {
      proxy.delayMs = 0;
      fresh.close();
    }
  });
});
