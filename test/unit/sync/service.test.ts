import os from 'node:os';
import type { ImagingStudy } from 'fhir/r4';
import { openStore, type Store } from '../../../src/sinks/store';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import type { Sink, StudyWrite, WriteOutcome } from '../../../src/sinks/sink';
import { createSyncService, SourceBusyError, type SyncConfigInput } from '../../../src/sync';
import { FakePacs, fakeMapper, fakeSourceConfig } from './fakes';

const NOW = new Date('2024-03-10T04:00:00Z'); // 20240310 in +0800
let store: Store;
let pacs: FakePacs;

beforeEach(() => {
  store = openStore(':memory:');
  pacs = new FakePacs();
  fakeMapper.broken.clear();
});
afterEach(() => store.close());

function service(sync: SyncConfigInput = {}, sinks: Sink[] = [createEmbeddedSink(store)], now = () => NOW) {
  return createSyncService({
    config: { sources: [fakeSourceConfig()], sync: { backfillFrom: '20240301', windowDays: 3, backoffBaseSeconds: 0, batchSize: 2, ...sync } },
    store,
    sinks,
    sourceFactory: () => pacs,
    mapper: fakeMapper,
    now,
  });
}

const instancesOf = (uid: string) => store.listImagingStudies().find((s) => s.identifier?.[0].value === `urn:oid:${uid}`)?.numberOfInstances;

describe('sync run loop (in-memory PACS)', () => {
  it('syncs every study once, then fetches only what changed', async () => {
    pacs.add({ uid: '1.1', date: '20240301', modality: 'CT', instances: 2 }, { uid: '1.2', date: '20240305', modality: 'MR', instances: 3 }, { uid: '1.3', date: '20240310', modality: 'CR', instances: 1 }, { uid: '1.4', modality: 'US', instances: 1 });
    const sync = service();
    const first = await sync.runOnce('fake');
    expect(first).toMatchObject({ status: 'ok', counts: { found: 4, fetched: 4, written: 4, failed: 0 } });
    expect(store.listImagingStudies()).toHaveLength(4);
    expect(store.getCheckpoint('fake')).toBe('20240310');
    expect(pacs.detailCalls.every((c) => c.length <= 2)).toBe(true);

    pacs.detailCalls = [];
    const unchanged = await sync.runOnce('fake');
    // The checkpoint is today: only the lookback window and the undated sweep are listed again.
    expect(unchanged).toMatchObject({ status: 'ok', counts: { found: 2, fetched: 0, written: 0, unchanged: 2 } });
    expect(pacs.detailCalls).toEqual([]);

    pacs.add({ uid: '1.3', date: '20240310', modality: 'CR', instances: 5 }, { uid: '1.5', date: '20240309', modality: 'CT', instances: 1 });
    const changed = await sync.runOnce('fake');
    expect(changed.counts).toMatchObject({ fetched: 2, written: 2, unchanged: 1 });
    expect(pacs.detailCalls.flat().sort()).toEqual(['1.3', '1.5']);
    expect(instancesOf('1.3')).toBe(5);
    expect(store.getResource<ImagingStudy>('ImagingStudy', store.getStudy('fake', '1.3')!.resourceId!)?.meta?.versionId).toBe('2');
  });

  it('records a failing study, keeps going, and dead-letters it after maxAttempts; replay brings it back', async () => {
    pacs.add({ uid: '2.1', date: '20240302', modality: 'CT', instances: 1 }, { uid: '2.2', date: '20240302', modality: 'CT', instances: 1 }, { uid: '2.3', date: '20240303', modality: 'CT', instances: 1 });
    pacs.failing.add('2.2');
    fakeMapper.broken.add('2.3');
    const sync = service({ maxAttempts: 2, lookbackDays: 10 });
    const first = await sync.runOnce('fake');
    expect(first.status).toBe('partial');
    expect(first.counts).toMatchObject({ written: 1, failed: 2 });
    expect(store.getStudy('fake', '2.2')).toMatchObject({ status: 'failing', attempts: 1, lastError: expect.stringContaining('HTTP 500') });
    expect(store.getStudy('fake', '2.3')).toMatchObject({ status: 'failing', lastError: expect.stringContaining('series-missing-modality') });
    // The window's checkpoint advanced: its failures are recorded for retry.
    expect(store.getCheckpoint('fake')).toBe('20240310');

    const second = await sync.runOnce('fake');
    expect(second.counts).toMatchObject({ failed: 2, dead: 2 });
    expect(store.deadLetters('fake').map((s) => s.studyUid)).toEqual(['2.2', '2.3']);
    const third = await sync.runOnce('fake');
    expect(third.counts).toMatchObject({ failed: 0, skipped: 2 });

    pacs.failing.clear();
    fakeMapper.broken.clear();
    expect(store.replay('fake', '2.2')).toBe(1);
    const fourth = await sync.runOnce('fake');
    expect(fourth.counts).toMatchObject({ written: 1 });
    expect(store.getStudy('fake', '2.2')).toMatchObject({ status: 'synced', attempts: 0 });
    expect(store.getStudy('fake', '2.3')?.status).toBe('dead');
  });

  it('retries a due failure outside the polled windows by looking it up by UID', async () => {
    pacs.add({ uid: '3.1', date: '20240101', modality: 'CT', instances: 1 });
    const sync = service({ backfillFrom: undefined });
    store.recordFailure('fake', '3.1', { studyDate: '20240101', fingerprint: null, error: 'earlier', countAttempt: true, maxAttempts: 5, retryDelaySeconds: () => 0, at: NOW });
    const run = await sync.runOnce('fake');
    expect(run.counts).toMatchObject({ written: 1 });
    expect(store.getStudy('fake', '3.1')?.status).toBe('synced');
  });

  it('ends the run when the PACS goes down: studies in hand kept for retry without counting an attempt, checkpoint held', async () => {
    for (let i = 0; i < 6; i++) pacs.add({ uid: `4.${i}`, date: '20240302', modality: 'CT', instances: 1 });
    pacs.add({ uid: '4.9', date: '20240308', modality: 'CT', instances: 1 });
    pacs.downAfterDetailCalls = 1;
    const sync = service();
    const run = await sync.runOnce('fake');
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/PACS unavailable/);
    expect(run.counts).toMatchObject({ written: 2, failed: 2 });
    expect(store.failingStudies('fake').every((s) => s.attempts === 0)).toBe(true);
    expect(store.getCheckpoint('fake')).toBeUndefined();

    pacs.down = false;
    pacs.downAfterDetailCalls = undefined;
    const next = await sync.runOnce('fake');
    expect(next.status).toBe('ok');
    expect(store.listImagingStudies()).toHaveLength(7);
    expect(store.counts('fake')).toMatchObject({ synced: 7, failing: 0 });
  });

  it('records a sink rejection per study and writes the rest', async () => {
    pacs.add({ uid: '5.1', date: '20240302', modality: 'CT', instances: 1 }, { uid: '5.2', date: '20240302', modality: 'CT', instances: 1 });
    const picky: Sink = {
      name: 'picky',
      async writeBatch(writes: StudyWrite[]): Promise<WriteOutcome[]> {
        return writes.map((w) => (w.studyUid === '5.2' ? { studyUid: w.studyUid, ok: false, error: 'HTTP 422', retryable: false } : { studyUid: w.studyUid, ok: true, resourceId: 'x' }));
      },
      async removeStudy() {},
    };
    const sync = service({}, [createEmbeddedSink(store), picky]);
    const run = await sync.runOnce('fake');
    expect(run.counts).toMatchObject({ written: 1, failed: 1 });
    expect(store.getStudy('fake', '5.2')).toMatchObject({ status: 'failing', lastError: expect.stringContaining('picky: HTTP 422') });
  });

  it('backfills a range, resumes an identical backfill after its checkpoint, and reports progress', async () => {
    for (let d = 1; d <= 9; d++) pacs.add({ uid: `6.${d}`, date: `2023010${d}`, modality: 'CT', instances: d });
    const sync = service({ windowDays: 2 });
    store.advanceCheckpoint('fake', '20230104', 'backfill:20230101-20230109');
    const progress: number[] = [];
    const run = await sync.backfill('fake', '2023-01-01', '2023-01-09', (p) => progress.push(p.windowsDone));
    expect(run).toMatchObject({ kind: 'backfill', status: 'ok', counts: { windows: 3, written: 5 } });
    expect(progress[0]).toBe(2);
    expect(progress[progress.length - 1]).toBe(5);
    expect(store.getCheckpoint('fake', 'backfill:20230101-20230109')).toBe('20230109');
    expect(store.getCheckpoint('fake')).toBeUndefined();
  });

  it('never runs one source twice at once, and stops gracefully', async () => {
    for (let i = 0; i < 8; i++) pacs.add({ uid: `7.${i}`, date: '20240302', modality: 'CT', instances: 1 });
    const sync = service();
    const first = sync.runOnce('fake');
    await expect(sync.runOnce('fake')).rejects.toBeInstanceOf(SourceBusyError);
    await sync.stop();
    const summary = await first;
    expect(summary.status).toBe('interrupted');
    expect(store.getCheckpoint('fake')).toBeUndefined();
    expect(store.listRuns('fake', 5)[0]).toMatchObject({ status: 'interrupted' });
  });

  it('reconciles: deletion=delete removes vanished studies the bridge created, never others', async () => {
    pacs.add({ uid: '8.1', date: '20240302', modality: 'CT', instances: 1 }, { uid: '8.2', date: '20240303', modality: 'CT', instances: 1 }, { uid: '8.3', date: '20240304', modality: 'CT', instances: 1 });
    const sync = service({ reconcile: { deletion: 'delete' } });
    await sync.runOnce('fake');
    pacs.studies.delete('8.2');
    const ignored = await service({ reconcile: { deletion: 'ignore' } }).reconcile('fake');
    expect(ignored.counts).toMatchObject({ listed: 2, vanished: 1, removed: 0 });
    expect(store.listImagingStudies()).toHaveLength(3);

    const run = await sync.reconcile('fake');
    expect(run).toMatchObject({ status: 'ok', counts: { listed: 2, vanished: 1, removed: 1 } });
    expect(store.listImagingStudies()).toHaveLength(2);
    expect(store.getStudy('fake', '8.2')).toBeUndefined();

    pacs.studies.clear();
    const empty = await sync.reconcile('fake');
    expect(empty.status).toBe('failed');
    expect(store.listImagingStudies()).toHaveLength(2);
  });

  it('polls on its cron schedule, skips a tick while the previous run is still going, and stops', async () => {
    pacs.add({ uid: '9.1', date: '20240302', modality: 'CT', instances: 1 });
    let inFlight = 0;
    let maxInFlight = 0;
    const undated = pacs.findUndatedStudies.bind(pacs);
    // Each run takes longer than the one-second schedule.
    pacs.findUndatedStudies = async () => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await new Promise((r) => setTimeout(r, 1300));
      inFlight--;
      return undated();
    };
    const sync = service({ cron: '* * * * * *' });
    sync.start();
    while (store.listRuns('fake', 10).filter((r) => r.status !== 'running').length < 2) await new Promise((r) => setTimeout(r, 50));
    await sync.stop();
    expect(maxInFlight).toBe(1);
    const runs = store.listRuns('fake', 10);
    expect(runs.every((r) => r.kind === 'poll' && r.status !== 'running')).toBe(true);
    expect(store.listImagingStudies()).toHaveLength(1);
  });

  it('does not run a source another live process holds; takes it over from a dead or expired holder', async () => {
    pacs.add({ uid: '10.1', date: '20240302', modality: 'CT', instances: 1 });
    const sync = service();
    const parent = `${os.hostname()}:${process.ppid}`;
    expect(store.acquireLease('fake', parent, 60_000)).toEqual({ ok: true });
    await expect(sync.runOnce('fake')).rejects.toMatchObject({ name: 'SourceBusyError', holder: parent });

    // A killed bridge on this host left its lease and a run marked running.
    store.releaseLease('fake', parent);
    store.acquireLease('fake', `${os.hostname()}:2147483646`, 60_000);
    const abandoned = store.startRun('fake', 'backfill');
    expect(await sync.runOnce('fake')).toMatchObject({ status: 'ok' });
    expect(store.listRuns('fake', 5).find((r) => r.runId === abandoned)?.status).toBe('interrupted');

    // Another host: trusted until its lease expires.
    expect(store.acquireLease('fake', 'other-host:1', 60_000)).toEqual({ ok: true });
    await expect(sync.runOnce('fake')).rejects.toMatchObject({ holder: 'other-host:1' });
    store.acquireLease('fake', 'other-host:1', -1);
    expect(await sync.runOnce('fake')).toMatchObject({ status: 'ok' });
  });
});
