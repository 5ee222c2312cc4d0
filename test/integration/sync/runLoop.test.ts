/**
 * The run loop's policies against a real Orthanc, the real source layer and mapper, and the embedded
 * store: the cron schedule, one run per source at a time, the cross-process lease, backfill resume, windows
 * checkpointed once settled, and the reconcile's empty-listing guard. The per-study rules (due retries by UID,
 * mapping and sink failures, dead letters) run in milliseconds on the in-memory PACS (test/unit/sync/runRules).
 * Each test has its own store and its own StudyDate year (with a fixed clock), so the tests share one Orthanc
 * without seeing each other's studies.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../../src/log';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import type { Sink, StudyWrite } from '../../../src/sinks/sink';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService, SourceBusyError, type SyncConfigInput } from '../../../src/sync';
import { loadStudies, makeSeries, makeStudy, type SyntheticStudy } from '../../fixtures/synthetic';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { startRecordingProxy, type RecordingProxy } from '../../harness/recordingProxy';
import { daysAgo, SOURCE_ID, sourceConfig, storedStudy } from './common';

let orthanc: OrthancServer;
let proxy: RecordingProxy;
let dir: string;
const stores: SqliteStateStore[] = [];
const logLines: string[] = [];
const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(line) } });

beforeAll(async () => {
  orthanc = await startOrthanc();
  proxy = await startRecordingProxy(orthanc.dicomWebBase);
  dir = mkdtempSync(path.join(os.tmpdir(), 'sync-runloop-'));
});

afterEach(async () => {
  proxy.delayMs = 0;
  proxy.failWhen(undefined);
  proxy.reset();
});

afterAll(async () => {
  for (const s of stores) s.close();
  await proxy?.stop();
  await orthanc?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A fresh embedded store in its own file. */
function freshStore(): SqliteStateStore {
  const store = openSqliteStore(path.join(dir, `store-${stores.length}.sqlite`));
  stores.push(store);
  return store;
}

/** A clock stopped at noon of a YYYYMMDD day in Taipei (the source's zone). */
function noonOf(day: string): () => Date {
  const at = new Date(`${day.slice(0, 4)}-${day.slice(4, 6)}-${day.slice(6)}T04:00:00Z`);
  return () => at;
}

function service(store: SqliteStateStore, sync: SyncConfigInput, opts: { now?: () => Date; sinks?: Sink[] } = {}) {
  return createSyncService({
    config: { sources: [sourceConfig(proxy.via(orthanc.dicomWebBase))], sync: { backoffBaseSeconds: 0, ...sync } },
    store,
    sinks: opts.sinks ?? [createEmbeddedSink(store)],
    logger,
    now: opts.now,
  });
}

/** StudyDate ranges of the study-level QIDO requests recorded since the last reset ("from-to" or one day). */
function listedDates(): string[] {
  return proxy.requests
    .filter((r) => r.level === 'studies')
    .map(
      (r) =>
        new URLSearchParams(r.url.split('?')[1] ?? '').get('StudyDate') ??
        new URLSearchParams(r.url.split('?')[1] ?? '').get('00080020'),
    )
    .filter((d): d is string => !!d && d !== '""');
}

/** StudyInstanceUIDs named in the series/instance queries recorded since the last reset. */
function uidsInDetailQueries(uids: string[]): string[] {
  const detail = proxy.requests
    .filter((r) => r.level === 'series' || r.level === 'instances')
    .map((r) => decodeURIComponent(r.url));
  return uids.filter((uid) => detail.some((url) => url.includes(uid)));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const uidsOf = (studies: SyntheticStudy[]) => studies.map((s) => s.studyUid).sort();

describe('sync run loop against Orthanc', () => {
  it('polls on its cron schedule, skips a tick while the previous run is still going, and stops', async () => {
    const store = freshStore();
    // Real time here: the run records' start and end times show whether runs overlapped.
    const study = makeStudy({ studyDate: daysAgo(0), series: [makeSeries({ instances: 1 })] });
    await loadStudies(orthanc, [study]);
    // The first run makes at least three requests (a window, series, instances): it outlasts the one-second schedule.
    proxy.delayMs = 600;
    const sync = service(store, { cron: '* * * * * *', lookbackDays: 0 });
    const linesBefore = logLines.length;
    sync.start();
    while ((await store.runs.listRuns(SOURCE_ID, 10)).filter((r) => r.status !== 'running').length < 2) await sleep(50);
    await sync.stop();

    // Oldest first; a run a tick started just before the stop ends interrupted.
    const runs = (await store.runs.listRuns(SOURCE_ID, 10)).reverse();
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(runs.every((r) => r.kind === 'poll' && (r.status === 'ok' || r.status === 'interrupted'))).toBe(true);
    expect(runs.slice(0, 2).map((r) => r.status)).toEqual(['ok', 'ok']);
    for (let i = 1; i < runs.length; i++) expect(runs[i].startedAt >= runs[i - 1].endedAt!).toBe(true);
    const messages = logLines.slice(linesBefore).map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(messages).toContain('poll skipped: another run of this source is still going');
    expect(messages).not.toContain('poll could not start');
    expect((await store.resources.listImagingStudies()).map((s) => s.id)).toHaveLength(1);
    expect((await storedStudy(store, study.studyUid))?.numberOfInstances).toBe(1);
    expect(runs[0].counts).toMatchObject({ written: 1 });
    expect(runs[1].counts).toMatchObject({ written: 0, unchanged: 1 });
    expect(runs.slice(2).every((r) => !r.counts.written)).toBe(true);
  });

  it('never runs one source twice at once, and a stop finishes the batch in hand, then stops', async () => {
    const store = freshStore();
    const studies = Array.from({ length: 8 }, () =>
      makeStudy({ studyDate: '20190302', series: [makeSeries({ instances: 1 })] }),
    );
    await loadStudies(orthanc, studies);
    proxy.delayMs = 40;
    const sync = service(store, { backfillFrom: '20190301', windowDays: 3, batchSize: 2 }, { now: noonOf('20190310') });
    const first = sync.runOnce(SOURCE_ID);
    expect(sync.isRunning(SOURCE_ID)).toBe(true);
    await expect(sync.runOnce(SOURCE_ID)).rejects.toBeInstanceOf(SourceBusyError);
    while ((await store.studies.counts(SOURCE_ID)).synced < 2) await sleep(10);
    await sync.stop();
    const summary = await first;

    expect(summary.status).toBe('interrupted');
    expect(await store.runs.listRuns(SOURCE_ID, 5)).toHaveLength(1);
    expect((await store.runs.listRuns(SOURCE_ID, 5))[0]).toMatchObject({ status: 'interrupted' });
    expect(await store.checkpoints.get(SOURCE_ID)).toBeUndefined();
    // Whole batches of two, each recorded with its resource; the run did not go on to the end.
    const { synced, failing } = await store.studies.counts(SOURCE_ID);
    expect(synced % 2).toBe(0);
    expect(synced).toBeLessThan(studies.length);
    expect(failing).toBe(0);
    expect(await store.resources.listImagingStudies()).toHaveLength(synced);
    expect(summary.counts).toMatchObject({ written: synced, fetched: synced });
  });

  it('does not run a source another live process holds; takes it over from a dead or expired holder', async () => {
    const store = freshStore();
    const study = makeStudy({ studyDate: '20200302', series: [makeSeries({ instances: 1 })] });
    await loadStudies(orthanc, [study]);
    const sync = service(store, { backfillFrom: '20200301' }, { now: noonOf('20200310') });
    const parent = `${os.hostname()}:${process.ppid}`;
    expect(await store.runs.acquireLease(SOURCE_ID, parent, 60_000)).toEqual({ ok: true });
    proxy.reset();
    await expect(sync.runOnce(SOURCE_ID)).rejects.toMatchObject({ name: 'SourceBusyError', holder: parent });
    // Refused before asking the PACS anything or recording a run.
    expect(proxy.requests).toEqual([]);
    expect(await store.runs.listRuns(SOURCE_ID, 5)).toEqual([]);

    // A killed bridge on this host left its lease and a run marked running.
    await store.runs.releaseLease(SOURCE_ID, parent);
    await store.runs.acquireLease(SOURCE_ID, `${os.hostname()}:2147483646`, 60_000);
    const abandoned = await store.runs.startRun(SOURCE_ID, 'poll');
    expect(await sync.runOnce(SOURCE_ID)).toMatchObject({ status: 'ok', counts: { written: 1 } });
    expect((await store.runs.listRuns(SOURCE_ID, 5)).find((r) => r.runId === abandoned)?.status).toBe('interrupted');
    expect(await storedStudy(store, study.studyUid)).toBeDefined();

    // Another host: trusted until its lease expires.
    expect(await store.runs.acquireLease(SOURCE_ID, 'other-host:1', 60_000)).toEqual({ ok: true });
    await expect(sync.runOnce(SOURCE_ID)).rejects.toMatchObject({ holder: 'other-host:1' });
    await store.runs.acquireLease(SOURCE_ID, 'other-host:1', -1);
    expect(await sync.runOnce(SOURCE_ID)).toMatchObject({ status: 'ok' });
    expect((await store.runs.listRuns(SOURCE_ID, 5)).filter((r) => r.status === 'ok')).toHaveLength(2);
  });

  it('backfills a range, resumes an identical backfill after its checkpoint, and reports progress', async () => {
    const store = freshStore();
    const studies = Array.from({ length: 9 }, (_, i) =>
      makeStudy({ studyDate: `2023010${i + 1}`, series: [makeSeries({ instances: 1 })] }),
    );
    await loadStudies(orthanc, studies);
    const sync = service(store, { windowDays: 2 }, { now: noonOf('20230301') });
    // An earlier run of this same backfill completed the windows through 20230104.
    await store.checkpoints.advance(SOURCE_ID, '20230104', 'backfill:20230101-20230109');
    proxy.reset();
    const progress: number[] = [];
    const run = await sync.backfill(SOURCE_ID, '2023-01-01', '2023-01-09', (p) => progress.push(p.windowsDone));

    expect(run).toMatchObject({
      kind: 'backfill',
      status: 'ok',
      counts: { windows: 3, found: 5, fetched: 5, written: 5 },
    });
    expect(listedDates()).toEqual(['20230105-20230106', '20230107-20230108', '20230109']);
    expect((await store.resources.listImagingStudies()).map((s) => s.id)).toHaveLength(5);
    for (const s of studies.slice(4)) expect(await storedStudy(store, s.studyUid)).toBeDefined();
    expect(uidsInDetailQueries(uidsOf(studies.slice(0, 4)))).toEqual([]);
    expect(progress[0]).toBe(2);
    expect(progress[progress.length - 1]).toBe(5);
    expect(progress.every((p, i) => i === 0 || p >= progress[i - 1])).toBe(true);
    expect(await store.checkpoints.get(SOURCE_ID, 'backfill:20230101-20230109')).toBe('20230109');
    // A backfill never moves the poll checkpoint.
    expect(await store.checkpoints.get(SOURCE_ID)).toBeUndefined();
  });

  it('batches run across window ends; a window is checkpointed only once all its studies are settled', async () => {
    const store = freshStore();
    // Two studies a day for six days, one-day windows, batches of five: 12 studies in 3 batches, not 6.
    const days = ['20160401', '20160402', '20160403', '20160404', '20160405', '20160406'];
    const studies = days.flatMap((d) =>
      [0, 1].map(() => makeStudy({ studyDate: d, series: [makeSeries({ instances: 1 })] })),
    );
    await loadStudies(orthanc, studies);
    const written: string[][] = [];
    const embedded = createEmbeddedSink(store);
    const recording: Sink = {
      name: 'recording',
      writeBatch: (w: StudyWrite[]) => (written.push(w.map((x) => x.studyUid)), embedded.writeBatch(w)),
      removeStudy: embedded.removeStudy,
    };
    const checkpoints: { at?: string; written: number }[] = [];
    const sync = service(store, { windowDays: 1, batchSize: 5 }, { now: noonOf('20160601'), sinks: [recording] });
    await sync.source(SOURCE_ID).supportsUidListMatching();
    proxy.reset();
    // Each progress report reads the store as it is then (the SQLite reads run before the callback returns).
    const reads: Promise<{ at?: string; written: number }>[] = [];
    const run = await sync.backfill(SOURCE_ID, '20160401', '20160406', () =>
      reads.push(
        Promise.all([
          store.checkpoints.get(SOURCE_ID, 'backfill:20160401-20160406'),
          store.resources.listImagingStudies(),
        ]).then(([at, stored]) => ({ at, written: stored.length })),
      ),
    );
    checkpoints.push(...(await Promise.all(reads)));

    expect(run).toMatchObject({ status: 'ok', counts: { windows: 6, found: 12, fetched: 12, written: 12 } });
    expect(written.map((b) => b.length)).toEqual([5, 5, 2]);
    expect(proxy.counts()).toMatchObject({ series: 3, instances: 3 });
    // Checkpoints only move forward, and never past a day with a study not yet written.
    const settledDay = (n: number) =>
      days.filter((d) => studies.filter((s) => s.studyDate! <= d).length <= n).at(-1) ?? '';
    for (const [i, cp] of checkpoints.entries()) {
      if (i > 0) expect((cp.at ?? '') >= (checkpoints[i - 1]!.at ?? '')).toBe(true);
      if (cp.at) expect(cp.at <= settledDay(cp.written)).toBe(true);
    }
    // Checkpoints moved during the run, not only at its end.
    expect(checkpoints.filter((c) => c.at && c.written < 12).length).toBeGreaterThan(0);
    expect(checkpoints.at(-1)).toEqual({ at: '20160406', written: 12 });
  });

  it('a sweep that lists no studies at all refuses to treat the stored ones as deleted', async () => {
    const store = freshStore();
    const studies = [makeStudy({ studyDate: '20170302' }), makeStudy({ studyDate: '20170303' })];
    await loadStudies(orthanc, studies);
    const settings: SyncConfigInput = {
      backfillFrom: '20170301',
      undatedSweep: false,
      reconcile: { deletion: 'delete' },
    };
    const sync = service(store, settings, { now: noonOf('20170310') });
    expect(await sync.runOnce(SOURCE_ID)).toMatchObject({ status: 'ok', counts: { written: 2 } });

    // A filter that matches nothing (misconfigured): the whole-range listing comes back empty.
    const misconfigured = service(store, { ...settings, filter: { AccessionNumber: 'NO-SUCH-ACCESSION' } });
    const run = await misconfigured.reconcile(SOURCE_ID);
    expect(run).toMatchObject({
      kind: 'sweep',
      status: 'failed',
      error: expect.stringMatching(/listed no studies/),
    });
    expect((await store.resources.listImagingStudies()).map((s) => s.id)).toHaveLength(2);
    for (const s of studies) {
      expect(await storedStudy(store, s.studyUid)).toBeDefined();
      expect((await store.studies.get(SOURCE_ID, s.studyUid))?.status).toBe('synced');
    }
  });
});
