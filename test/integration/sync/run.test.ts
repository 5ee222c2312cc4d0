/**
 * The sync against a real Orthanc, through a proxy that counts requests by DICOMweb level: initial
 * sync, late studies and instances, an unchanged re-poll, a dead letter and its replay, deletions,
 * and Orthanc going away mid-run.
 */
import type { ImagingStudy } from 'fhir/r4';
import { createLogger } from '../../../src/log';
import { imagingStudyId } from '../../../src/mapping';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService, type SyncConfigInput } from '../../../src/sync';
import {
  generateCorpus,
  loadStudies,
  makeInstance,
  makeSeries,
  makeStudy,
  modalitiesInStudy,
  SOP_CLASS,
  type SyntheticStudy,
} from '../../fixtures/synthetic';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { levelOf, startRecordingProxy, type RecordingProxy } from '../../harness/recordingProxy';
import { daysAgo, deleteFromOrthanc, instancesOf, SOURCE_ID, sourceConfig, storedStudy } from './common';

let orthanc: OrthancServer;
let proxy: RecordingProxy;
let store: SqliteStateStore;
let corpus: SyntheticStudy[];
const logLines: string[] = [];
const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(line) } });

const baseSync: SyncConfigInput = {
  lookbackDays: 10,
  windowDays: 5,
  batchSize: 10,
  backoffBaseSeconds: 0,
  maxAttempts: 3,
};

function service(sync: SyncConfigInput = {}, s: SqliteStateStore = store) {
  return createSyncService({
    config: { sources: [sourceConfig(proxy.via(orthanc.dicomWebBase))], sync: { ...baseSync, ...sync } },
    store: s,
    sinks: [createEmbeddedSink(s)],
    logger,
  });
}

/** StudyInstanceUIDs named in the series/instance queries recorded since the last reset. */
function uidsInDetailQueries(uids: string[]): string[] {
  const detail = proxy.requests
    .filter((r) => r.level === 'series' || r.level === 'instances')
    .map((r) => decodeURIComponent(r.url));
  return uids.filter((uid) => detail.some((url) => url.includes(uid)));
}

beforeAll(async () => {
  orthanc = await startOrthanc();
  proxy = await startRecordingProxy(orthanc.dicomWebBase);
  corpus = generateCorpus({ seed: 4, studies: 20, days: { from: daysAgo(6), count: 7 }, undated: 2 });
  await loadStudies(orthanc, corpus);
  store = openSqliteStore(':memory:');
});

afterAll(async () => {
  store?.close();
  await proxy?.stop();
  await orthanc?.stop();
});

describe('sync against Orthanc', () => {
  it('an initial sync puts every study in the store with the right counts', async () => {
    // A resource for one study that the bridge did not create (loaded by someone else before it ran).
    const foreign = corpus[1];
    await store.resources.put([
      {
        resource: {
          resourceType: 'ImagingStudy',
          id: imagingStudyId(foreign.studyUid),
          status: 'available',
          subject: { reference: 'Patient/elsewhere' },
        } as ImagingStudy & { id: string },
        sourceId: SOURCE_ID,
        studyUid: foreign.studyUid,
        contentHash: 'loaded-elsewhere',
        createdByBridge: false,
      },
    ]);

    // The poll lists the dated studies; the undated ones are the sweep's.
    const run = await service().runOnce(SOURCE_ID);
    expect(run).toMatchObject({ status: 'ok', counts: { found: 18, fetched: 18, written: 18, failed: 0 } });
    const sweep = await service().sweep(SOURCE_ID);
    expect(sweep).toMatchObject({ status: 'ok', counts: { listed: 20, unchanged: 18, written: 2, failed: 0 } });
    expect(await store.resources.listImagingStudies({ sourceId: SOURCE_ID })).toHaveLength(20);
    for (const study of corpus) {
      const stored = await storedStudy(store, study.studyUid);
      expect(stored).toBeDefined();
      expect(stored!.numberOfSeries).toBe(study.series.length);
      expect(stored!.numberOfInstances).toBe(instancesOf(study));
      expect(await store.studies.get(SOURCE_ID, study.studyUid)).toMatchObject({
        status: 'synced',
        resourceId: imagingStudyId(study.studyUid),
      });
    }
    expect(await store.studies.counts(SOURCE_ID)).toMatchObject({ studies: 20, synced: 20, resources: 20 });
    expect(
      await store.resources.get(
        'Endpoint',
        (await storedStudy(store, corpus[0].studyUid))!.endpoint![0].reference!.split('/')[1],
      ),
    ).toBeDefined();
    // Batched details: far fewer detail queries than two per study.
    expect(proxy.counts().series + proxy.counts().instances).toBeLessThan(20);
  });

  it('a per-source filter limits discovery (ModalitiesInStudy)', async () => {
    const filtered = openSqliteStore(':memory:');
    try {
      const run = await service(
        { sources: { [SOURCE_ID]: { filter: { ModalitiesInStudy: 'MR' } } } },
        filtered,
      ).runOnce(SOURCE_ID);
      const expected = corpus
        .filter((s) => modalitiesInStudy(s).includes('MR'))
        .map((s) => imagingStudyId(s.studyUid))
        .sort();
      expect(expected.length).toBeGreaterThan(0);
      expect(expected.length).toBeLessThan(corpus.length);
      expect(run).toMatchObject({ status: 'ok', counts: { written: expected.length } });
      expect((await filtered.resources.listImagingStudies()).map((s) => s.id).sort()).toEqual(expected);
    } finally {
      filtered.close();
    }
  });

  it('an unchanged re-poll makes only study-level QIDO requests and writes nothing', async () => {
    const versionsBefore = (await store.resources.listImagingStudies()).map((s) => `${s.id}@${s.meta?.versionId}`);
    proxy.reset();
    const run = await service().runOnce(SOURCE_ID);
    expect(run).toMatchObject({ status: 'ok', counts: { found: 18, unchanged: 18, fetched: 0, written: 0 } });
    const counts = proxy.counts();
    expect(counts.studies).toBeGreaterThan(0);
    expect(counts).toMatchObject({ series: 0, instances: 0, metadata: 0, other: 0 });
    expect(run.counts.qidoRequests).toBe(counts.studies);
    expect(proxy.requests.every((r) => levelOf(r.url) === 'studies')).toBe(true);
    expect((await store.resources.listImagingStudies()).map((s) => `${s.id}@${s.meta?.versionId}`)).toEqual(
      versionsBefore,
    );
  });

  it('new studies and a new instance in an existing study: exactly those are updated, with new counts', async () => {
    const grown = corpus[4];
    grown.series[0].instances.push(makeInstance({ sopClassUid: SOP_CLASS[grown.series[0].modality], number: 99 }));
    const added = [
      makeStudy({ studyDate: daysAgo(1) }),
      makeStudy({ studyDate: daysAgo(0), series: [makeSeries({ modality: 'MR', instances: 3 })] }),
    ];
    await loadStudies(orthanc, [grown, ...added]);
    proxy.reset();

    const run = await service().runOnce(SOURCE_ID);
    expect(run).toMatchObject({ status: 'ok', counts: { found: 20, fetched: 3, written: 3, unchanged: 17 } });
    const allUids = [...corpus, ...added].map((s) => s.studyUid);
    expect(uidsInDetailQueries(allUids).sort()).toEqual([grown.studyUid, ...added.map((s) => s.studyUid)].sort());
    expect(await storedStudy(store, grown.studyUid)).toMatchObject({
      numberOfInstances: instancesOf(grown),
      meta: { versionId: '2' },
    });
    expect(await storedStudy(store, added[1].studyUid)).toMatchObject({
      numberOfSeries: 1,
      numberOfInstances: 3,
      meta: { versionId: '1' },
    });
    expect((await storedStudy(store, corpus[5].studyUid))?.meta?.versionId).toBe('1');
    corpus.push(...added);
  });

  it('a study that always fails becomes a dead letter after maxAttempts; replay brings it back once fixed', async () => {
    const bad = makeStudy({ studyDate: daysAgo(2) });
    await loadStudies(orthanc, [bad]);
    // The PACS answers 500 to any series/instance query naming this study.
    proxy.failWhen((r) => levelOf(r.url) !== 'studies' && decodeURIComponent(r.url).includes(bad.studyUid), 500);
    const sync = service({ maxAttempts: 2 });

    const first = await sync.runOnce(SOURCE_ID);
    expect(first).toMatchObject({ status: 'partial', counts: { written: 0, failed: 1 } });
    expect(await store.studies.get(SOURCE_ID, bad.studyUid)).toMatchObject({
      status: 'failing',
      attempts: 1,
      lastError: expect.stringMatching(/500/),
    });
    const second = await sync.runOnce(SOURCE_ID);
    expect(second.counts).toMatchObject({ failed: 1, dead: 1 });
    expect((await store.studies.list(SOURCE_ID, 'dead')).map((s) => s.studyUid)).toEqual([bad.studyUid]);

    proxy.reset();
    const third = await sync.runOnce(SOURCE_ID);
    expect(third).toMatchObject({ status: 'ok', counts: { failed: 0, skipped: 1, fetched: 0 } });
    expect(uidsInDetailQueries([bad.studyUid])).toEqual([]);
    expect(await storedStudy(store, bad.studyUid)).toBeUndefined();

    proxy.failWhen(undefined);
    expect(await store.studies.replay(SOURCE_ID)).toBe(1);
    const fourth = await sync.runOnce(SOURCE_ID);
    expect(fourth).toMatchObject({ status: 'ok', counts: { written: 1 } });
    expect(await store.studies.get(SOURCE_ID, bad.studyUid)).toMatchObject({
      status: 'synced',
      attempts: 0,
      lastError: null,
    });
    expect((await storedStudy(store, bad.studyUid))?.numberOfInstances).toBe(instancesOf(bad));
    corpus.push(bad);
  });

  it('with deletion=delete, a vanished study is removed from the store; a resource the bridge did not create is left alone', async () => {
    const [vanished, foreign] = [corpus[0], corpus[1]];
    expect(await store.resources.getMeta('ImagingStudy', imagingStudyId(foreign.studyUid))).toMatchObject({
      createdByBridge: false,
    });
    await deleteFromOrthanc(orthanc, vanished.studyUid);
    await deleteFromOrthanc(orthanc, foreign.studyUid);

    const ignored = await service().reconcile(SOURCE_ID);
    expect(ignored).toMatchObject({ status: 'ok', counts: { vanished: 2, removed: 0 } });
    expect(await storedStudy(store, vanished.studyUid)).toBeDefined();

    const before = (await store.resources.listImagingStudies()).length;
    const run = await service({ reconcile: { deletion: 'delete' } }).reconcile(SOURCE_ID);
    expect(run).toMatchObject({ status: 'ok', counts: { listed: corpus.length - 2, vanished: 2, removed: 2 } });
    expect(await storedStudy(store, vanished.studyUid)).toBeUndefined();
    expect(await storedStudy(store, foreign.studyUid)).toBeDefined();
    expect(await store.resources.listImagingStudies()).toHaveLength(before - 1);
    expect(await store.studies.get(SOURCE_ID, vanished.studyUid)).toBeUndefined();
  });

  it('Orthanc stopped mid-run: the run ends with its failures recorded, and the next run completes them', async () => {
    const fresh = openSqliteStore(':memory:');
    try {
      const sync = service({ batchSize: 2, windowDays: 30 }, fresh);
      proxy.delayMs = 40;
      const running = sync.runOnce(SOURCE_ID);
      while ((await fresh.studies.counts(SOURCE_ID)).synced < 4) await new Promise((r) => setTimeout(r, 10));
      await orthanc.kill();
      const broken = await running;
      proxy.delayMs = 0;
      expect(broken.status).toBe('failed');
      expect(broken.error).toMatch(/PACS unavailable/);
      expect((await fresh.runs.listRuns(SOURCE_ID, 1))[0]).toMatchObject({
        status: 'failed',
        error: expect.stringMatching(/unavailable/),
      });
      const failing = await fresh.studies.list(SOURCE_ID, 'failing');
      expect(failing.length).toBeGreaterThan(0);
      expect(failing.every((s) => s.attempts === 0 && /unavailable/.test(s.lastError ?? ''))).toBe(true);
      const syncedBefore = (await fresh.studies.counts(SOURCE_ID)).synced;
      expect(syncedBefore).toBeLessThan(corpus.length - 4);

      await orthanc.restart();
      const next = await sync.runOnce(SOURCE_ID);
      expect(next).toMatchObject({ status: 'ok', counts: { failed: 0 } });
      // Two deleted, two undated (those are the sweep's): polls sync the rest.
      expect(await fresh.studies.counts(SOURCE_ID)).toMatchObject({
        synced: corpus.length - 4,
        failing: 0,
        dead: 0,
        resources: corpus.length - 4,
      });
    } finally {
      proxy.delayMs = 0;
      fresh.close();
    }
  });

  it('logs carry the source and run id and never patient names, IDs or birth dates', async () => {
    const entries = logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const runLines = entries.filter((e) => e.runId);
    expect(runLines.length).toBeGreaterThan(10);
    expect(runLines.every((e) => e.source === SOURCE_ID)).toBe(true);
    const text = logLines.join('\n');
    for (const s of corpus) {
      for (const phi of [s.patient.id, s.patient.alphabetic, s.patient.ideographic, s.patient.birthDate]) {
        if (phi && phi.length > 3) expect(text).not.toContain(phi);
      }
    }
  });
});
