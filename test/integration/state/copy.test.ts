/**
 * migrate-store's copy: a SQLite store filled through its repositories, copied to PostgreSQL, must answer
 * every repository question the same way there; a non-empty target is refused unless forced.
 */
import type { StateStore } from '../../../src/state/repositories';
import { copyState } from '../../../src/state/copy';
import type { PostgresStateStore } from '../../../src/state/postgres';
import type { SqliteStateStore } from '../../../src/state/sqlite';
import { storedStudy } from '../../fixtures/storedStudies';
import { postgresMissing } from '../../harness/postgres';
import { postgresBackend, sqliteBackend } from './backends';

const T0 = new Date('2025-03-01T10:00:00.000Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);
const JOB = 'backfill:a:20240101-20240131';

/** A bit of everything the bridge records, written the way the bridge writes it. */
async function fill(store: StateStore): Promise<void> {
  await store.checkpoints.advance('a', '20250228');
  await store.checkpoints.advance('a', '20240131', 'backfill:20240101-20240131');
  const studies = Array.from({ length: 30 }, (_, i) => storedStudy('a', i));
  await store.resources.put(
    studies.map((s, i) => ({ resource: s, contentHash: `h${i}`, sourceId: 'a', studyUid: s.id, at: at(i) })),
  );
  await store.resources.put([{ resource: storedStudy('a', 3), contentHash: 'h3-v2', sourceId: 'a', at: at(40) }]);
  await store.studies.recordSynced(
    'a',
    studies.slice(0, 20).map((s, i) => ({
      studyUid: s.id,
      studyDate: `202401${String(1 + (i % 9)).padStart(2, '0')}`,
      fingerprint: `f${i}`,
      contentHash: `h${i}`,
      resourceId: s.id,
      versionId: '1',
      at: at(100 + i),
      seenAt: at(90),
    })),
  );
  const fail = { fingerprint: null, error: 'x', countAttempt: true, maxAttempts: 2, retryDelaySeconds: () => 60 };
  await store.studies.recordFailures('a', [
    { ...fail, studyUid: 'f1', studyDate: '20240102', at: at(200) },
    { ...fail, studyUid: 'f2', studyDate: null, at: at(201), seen: false },
  ]);
  await store.studies.recordFailures('a', [{ ...fail, studyUid: 'f1', studyDate: '20240102', at: at(300) }]);
  await store.studies.recordQuarantine('a', studies[5].id, {
    studyDate: null,
    fingerprint: null,
    reason: 'study-uid-conflict',
    detail: 'd',
    at: at(310),
  });
  await store.studies.markRemoved('a', studies[6].id, 'vanished');
  const done = await store.sweeps.open('a', at(50));
  await store.sweeps.advance(done.id, { throughDate: '20240131', listed: 20, undatedDone: true });
  await store.sweeps.complete(done.id, {
    vanished: 1,
    unresolved: 0,
    held: { removals: 1, of: 20, limit: 0 },
    at: at(400),
  });
  await store.sweeps.confirmHeld('a', at(450));
  const open = await store.sweeps.open('a', at(500));
  await store.sweeps.advance(open.id, { throughDate: '20240110', listed: 4 });
  await store.feed.recordPage('a', 'orthanc', undefined, 7, [{ studyRef: 'o1', ready: true }], at(10));
  await store.feed.recordPage('a', 'orthanc', 7, 9, [{ studyRef: 'o2', ready: false }], at(11));
  await store.feed.requestSweep('a', 'feed went back', at(12));
  await store.holdings.record('a', [{ studyUid: '1.2.1', json: '{"a":1}' }], at(13));
  await store.holdings.record('b', [{ studyUid: '1.2.1', json: '{"b":1}' }], at(14));
  const r1 = await store.runs.startRun('a', 'poll', at(0));
  await store.runs.finishRun(r1, { status: 'partial', counts: { found: 3, failed: 1 }, error: 'e', at: at(5) });
  await store.runs.startRun('a', 'sweep', at(6));
  await store.runs.startRun('b', 'backfill', at(7));
  await store.work.enqueue(JOB, 'a', [
    { payload: { from: '20240101' } },
    { payload: { from: '20240111' } },
    { payload: { from: '20240121' } },
  ]);
  const item = await store.work.claim(JOB, 'w1', 60_000, at(0));
  await store.work.complete(item!.id, 'w1');
  await store.work.claim(JOB, 'w2', 60_000, at(0));
  await store.runs.acquireLease('a', 'holder', 60_000); // leases are not copied
}

/** Every repository question the bridge asks, answered by one store. */
async function answers(store: StateStore) {
  const a = 'a';
  const ids = (await store.resources.listImagingStudies()).map((s) => s.id!);
  return {
    checkpoints: await store.checkpoints.list(a),
    studies: await store.studies.list(a),
    counts: await store.studies.counts(a),
    pending: await store.studies.pendingSummary(a),
    freshness: await store.studies.freshnessSince(a, new Date(0)),
    perDay: [...(await store.studies.studiesPerDay(a, '20240101', '20241231'))].sort(),
    unseen: (await store.studies.unseenSince(a, at(95).toISOString())).sort((x, y) =>
      x.studyUid < y.studyUid ? -1 : 1,
    ),
    earliest: await store.studies.earliestStudyDate(a),
    due: await store.studies.dueRetries(a, at(10_000)),
    sources: await store.studies.knownSources(),
    sweep: await store.sweeps.current(a),
    lastSweep: await store.sweeps.lastComplete(a),
    feed: await store.feed.checkpoint(a),
    feedPending: await store.feed.duePending(a, at(1000), 10),
    sweepRequest: await store.feed.sweepRequest(a),
    holdings: [...(await store.holdings.of(['1.2.1']))],
    runs: [...(await store.runs.listRuns(a)), ...(await store.runs.listRuns('b'))],
    work: await store.work.progress(JOB),
    resources: await Promise.all(ids.map((id) => store.resources.get('ImagingStudy', id))),
    metas: await Promise.all(ids.map((id) => store.resources.getMeta('ImagingStudy', id))),
    byStudy: await store.resources.studyResource(a, storedStudy('a', 3).id),
    search: (
      await store.resources.searchImagingStudies(
        { sourceId: a, tokens: [[{ kind: 'modality', value: 'CT' }]], dayFrom: '20240105' },
        { limit: 100 },
      )
    ).map((s) => s.id),
  };
}

const missing = postgresMissing();
const describePg = missing ? describe.skip : describe;
if (missing) console.warn(`copy to PostgreSQL not tested: ${missing}`);

describePg('copyState (migrate-store), SQLite to PostgreSQL', () => {
  const lite = sqliteBackend();
  const pg = postgresBackend();
  let from: SqliteStateStore;
  let to: PostgresStateStore;

  beforeAll(async () => {
    await Promise.all([lite.setUp(), pg.setUp()]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([lite.tearDown(), pg.tearDown()]);
  });
  beforeEach(async () => {
    from = await lite.fresh();
    to = await pg.fresh();
    await fill(from);
  });
  afterEach(async () => {
    await from.close();
    await to.close();
  });

  it('copies every table, and every repository answers the same on both', async () => {
    const copied = await copyState(from, to, { pageSize: 7 }); // pages end inside every larger table
    expect(copied).toEqual({
      checkpoints: 2,
      studies: 22,
      runs: 3,
      sweeps: 2,
      feed_state: 1,
      feed_pending: 2,
      sweep_requests: 1,
      study_holdings: 2,
      work_items: 3,
      resources: 30,
    });
    const expected = await answers(from);
    expect(expected.studies.length).toBe(22);
    expect(expected.search.length).toBeGreaterThan(0);
    expect(await answers(to)).toEqual(expected);
    // Leases stay behind: they belong to running processes.
    expect(await to.runs.acquireLease('a', 'new-holder', 60_000)).toEqual({ ok: true });
  });

  it('continues ids after the copied ones', async () => {
    await copyState(from, to);
    const before = await to.sweeps.current('a');
    await to.sweeps.complete(before!.id, { vanished: 0, unresolved: 0 });
    expect((await to.sweeps.open('a')).id).toBeGreaterThan(before!.id);
    await to.work.enqueue('next-job', 'a', [{ payload: { n: 1 } }]);
    expect((await to.work.claim('next-job', 'w', 1000))!.id).toBeGreaterThan(3);
    const run = await to.runs.startRun('a', 'poll');
    expect((await to.runs.listRuns('a', 1))[0].runId).toBe(run); // newest first: its id is the highest
  });

  it('refuses a non-empty target unless forced, and a forced copy replaces it', async () => {
    await to.checkpoints.advance('zzz', '20200101');
    await expect(copyState(from, to)).rejects.toThrow(/not empty \(checkpoints: 1 rows\)/);
    expect(await to.studies.list('a')).toEqual([]);
    await copyState(from, to, { force: true });
    expect(await to.checkpoints.list('zzz')).toEqual([]);
    expect(await answers(to)).toEqual(await answers(from));
  });
});
