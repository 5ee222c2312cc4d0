/**
 * One contract for the state repositories, run on every backend: what each method records and answers.
 * Both backends must pass the same assertions, so they behave the same to the rest of the bridge.
 */
import type { ImagingStudy } from 'fhir/r4';
import type { StateStore } from '../../../src/state/repositories';
import { studyIndexRow, type StudyIndexFilter } from '../../../src/state/studyIndex';
import type { StudyFailure, SyncedStudy } from '../../../src/state/types';
import { studyFailure, syncedStudy } from '../../fixtures/stateRecords';
import { storedStudy } from '../../fixtures/storedStudies';
import { backends, type Backend } from './backends';

const T0 = new Date('2025-03-01T10:00:00.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const iso = (seconds: number) => at(seconds).toISOString();

const failure = (studyUid: string, over: Partial<StudyFailure> = {}) => studyFailure(studyUid, T0, over);
const synced = (studyUid: string, seconds = 0, over: Partial<SyncedStudy> = {}) =>
  syncedStudy(studyUid, at(seconds), over);

describe.each(backends())('state contract on $name', (backend: Backend) => {
  let store: StateStore;
  const others: StateStore[] = [];
  const replica = async () => {
    const r = await backend.replica(store);
    others.push(r);
    return r;
  };

  beforeAll(() => backend.setUp(), 60_000);
  afterAll(() => backend.tearDown());
  beforeEach(async () => {
    store = await backend.fresh();
  });
  afterEach(async () => {
    await Promise.all(others.splice(0).map((s) => s.close()));
    await store.close();
  });

  describe('checkpoints', () => {
    it('move forward only, per source and name', async () => {
      await store.checkpoints.advance('a', '20250105');
      await store.checkpoints.advance('a', '20250101'); // a late window: ignored
      await store.checkpoints.advance('a', '20240101', 'backfill:20240101-20241231');
      await store.checkpoints.advance('b', '20200101');
      expect(await store.checkpoints.get('a')).toBe('20250105');
      expect(await store.checkpoints.get('a', 'missing')).toBeUndefined();
      await store.checkpoints.advance('a', '20250110');
      const list = await store.checkpoints.list('a');
      expect(list.map((c) => [c.name, c.throughDate])).toEqual([
        ['backfill:20240101-20241231', '20240101'],
        ['poll', '20250110'],
      ]);
      expect(list[0].updatedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    });
  });

  describe('study state', () => {
    it('records a synced study with its sighting and freshness', async () => {
      await store.studies.recordSynced('a', [{ ...synced('1.1', 5), seenAt: at(0) }]);
      const s = await store.studies.get('a', '1.1');
      expect(s).toMatchObject({
        status: 'synced',
        studyDate: '20250301',
        fingerprint: 'fp-1.1',
        contentHash: 'h-1.1',
        resourceId: 'res-1.1',
        versionId: '1',
        lastSeen: iso(5),
        attempts: 0,
        nextRetryAt: null,
        dead: false,
        createdByBridge: true,
        firstSeen: iso(0),
        pendingSince: null,
        syncedAt: iso(5),
      });
      expect(await store.studies.freshnessSince('a', at(5))).toEqual([5000]);
      expect(await store.studies.freshnessSince('a', at(6))).toEqual([]);
    });

    it('writes a study named twice in one batch in order', async () => {
      await store.studies.recordFailures('a', [failure('twice')]);
      await store.studies.recordSynced('a', [
        synced('twice', 10),
        { ...synced('other', 10) },
        { ...synced('twice', 20), fingerprint: 'later', seenAt: at(15) },
      ]);
      expect(await store.studies.get('a', 'twice')).toMatchObject({
        fingerprint: 'later',
        lastSeen: iso(20),
        firstSeen: iso(0),
        syncedAt: iso(20),
      });
      // The first write ended the pending state, so the second's freshness runs from its own sighting (5 s).
      expect(await store.studies.freshnessSince('a', at(0))).toEqual([0, 5000]);
    });

    it('counts attempts, schedules retries and dead-letters at the limit', async () => {
      const [first] = await store.studies.recordFailures('a', [failure('1.2')]);
      expect(first).toMatchObject({ status: 'failing', attempts: 1, nextRetryAt: iso(60), lastError: 'boom' });
      expect(first.pendingSince).toBe(iso(0));
      const [second] = await store.studies.recordFailures('a', [failure('1.2', { at: at(100), error: 'again' })]);
      expect(second).toMatchObject({ attempts: 2, nextRetryAt: iso(220), lastError: 'again', pendingSince: iso(0) });
      // Not the study's fault: no attempt counted, retried at once.
      const [outage] = await store.studies.recordFailures('a', [failure('1.2', { at: at(200), countAttempt: false })]);
      expect(outage).toMatchObject({ status: 'failing', attempts: 2, nextRetryAt: iso(200) });
      const [dead] = await store.studies.recordFailures('a', [failure('1.2', { at: at(300) })]);
      expect(dead).toMatchObject({ status: 'dead', attempts: 3, nextRetryAt: null, dead: true });
      expect(await store.studies.pendingSummary('a')).toEqual({
        failing: 0,
        dead: 1,
        oldestSince: iso(0),
        oldestStudyUid: '1.2',
      });
      // Synced at last: freshness runs from when the failing state was first seen.
      await store.studies.recordSynced('a', [synced('1.2', 400)]);
      expect(await store.studies.get('a', '1.2')).toMatchObject({ status: 'synced', attempts: 0, pendingSince: null });
      expect(await store.studies.freshnessSince('a', at(0))).toEqual([400_000]);
    });

    it('answers a batch of failures in order, a study named twice counting from its first outcome', async () => {
      const out = await store.studies.recordFailures('a', [
        failure('z'),
        failure('b'),
        failure('z', { error: 'twice' }),
      ]);
      expect(out.map((s) => [s.studyUid, s.attempts, s.lastError])).toEqual([
        ['z', 1, 'boom'],
        ['b', 1, 'boom'],
        ['z', 2, 'twice'],
      ]);
    });

    it('keeps last_seen when a failure was not seen on the PACS', async () => {
      await store.studies.recordSynced('a', [synced('1.3', 0)]);
      const [s] = await store.studies.recordFailures('a', [failure('1.3', { at: at(50), seen: false })]);
      expect(s.lastSeen).toBe(iso(0));
      const [fresh] = await store.studies.recordFailures('a', [failure('1.4', { seen: false })]);
      expect(fresh.lastSeen).toBeNull();
    });

    it('counts every attempt when replicas record failures of one new study at once', async () => {
      const other = await replica();
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? other : store).studies.recordFailures('a', [failure('race', { maxAttempts: 20 })]),
        ),
      );
      expect((await store.studies.get('a', 'race'))!.attempts).toBe(10);
    });

    it('lists due retries only', async () => {
      await store.studies.recordFailures('a', [failure('d1'), failure('d2', { countAttempt: false })]);
      expect((await store.studies.dueRetries('a', at(30))).map((s) => s.studyUid)).toEqual(['d2']);
      expect((await store.studies.dueRetries('a', at(60))).map((s) => s.studyUid)).toEqual(['d1', 'd2']);
    });

    it('quarantines keeping what was written, and replays one study or all', async () => {
      await store.studies.recordSynced('a', [synced('q1', 0)]);
      const q = await store.studies.recordQuarantine('a', 'q1', {
        studyDate: null,
        fingerprint: null,
        reason: 'study-uid-conflict',
        detail: 'two patients',
        at: at(10),
      });
      expect(q).toMatchObject({
        status: 'quarantined',
        reason: 'study-uid-conflict',
        lastError: 'two patients',
        resourceId: 'res-q1',
        contentHash: null,
        fingerprint: 'fp-q1',
        studyDate: '20250301',
      });
      await store.studies.recordQuarantine('a', 'q2', {
        studyDate: '20250302',
        fingerprint: 'f',
        reason: 'study-uid-conflict',
        detail: 'x',
      });
      await store.studies.recordFailures('a', [failure('dd', { maxAttempts: 1 })]);
      expect((await store.studies.counts('a')).quarantined).toBe(2);
      expect(await store.studies.replay('a', 'q1')).toBe(1);
      expect(await store.studies.get('a', 'q1')).toMatchObject({
        status: 'failing',
        attempts: 0,
        nextRetryAt: null,
        reason: null,
      });
      expect(await store.studies.replay('a')).toBe(2); // q2 and the dead letter
      expect(await store.studies.replay('a')).toBe(0);
    });

    it('counts, lists and finds studies by sighting and day', async () => {
      await store.studies.recordSynced('a', [
        synced('s1', 0),
        synced('s2', 0, { studyDate: '20250302' }),
        synced('s3', 0, { studyDate: null }),
      ]);
      await store.studies.recordFailures('a', [failure('f1', { studyDate: '20250302' })]);
      await store.studies.recordSynced('b', [synced('other', 0)]);
      await store.studies.markRemoved('a', 's1', 'gone');
      expect(await store.studies.counts('a')).toEqual({
        studies: 4,
        synced: 2,
        failing: 1,
        dead: 0,
        removed: 1,
        quarantined: 0,
        resources: 0,
      });
      // NULL dates first, then by date and UID.
      expect((await store.studies.list('a')).map((s) => s.studyUid)).toEqual(['s3', 's1', 'f1', 's2']);
      expect((await store.studies.list('a', 'synced')).map((s) => s.studyUid)).toEqual(['s3', 's2']);
      expect((await store.studies.present('a')).map((s) => s.studyUid).sort()).toEqual(['f1', 's2', 's3']);
      expect(await store.studies.earliestStudyDate('a')).toBe('20250302');
      expect(await store.studies.studiesPerDay('a', '20250301', '20250331')).toEqual(new Map([['20250302', 2]]));
      await store.studies.touchSeen('a', ['s2', 'nope'], at(100));
      expect((await store.studies.unseenSince('a', iso(50))).map((s) => s.studyUid).sort()).toEqual(['f1', 's3']);
      expect((await store.studies.get('a', 's2'))!.lastSeen).toBe(iso(100));
      const many = await store.studies.getMany('a', ['s2', 'missing', 's3']);
      expect([...many.keys()]).toEqual(['s2', 's3']);
      await store.studies.forget('a', 's3');
      expect(await store.studies.get('a', 's3')).toBeUndefined();
      await store.runs.startRun('c', 'poll');
      expect(await store.studies.knownSources()).toEqual(['a', 'b', 'c']);
    });

    it('takes created_by_bridge from the stored ImagingStudy', async () => {
      await store.resources.put([
        {
          resource: { resourceType: 'ImagingStudy', id: 'theirs', status: 'available', subject: {} } as ImagingStudy & {
            id: string;
          },
          contentHash: 'x',
          createdByBridge: false,
          sourceId: 'a',
          studyUid: 'u',
        },
      ]);
      await store.studies.recordSynced('a', [synced('u', 0, { resourceId: 'theirs' })]);
      expect((await store.studies.get('a', 'u'))!.createdByBridge).toBe(false);
      expect((await store.studies.counts('a')).resources).toBe(1);
    });
  });

  describe('holdings', () => {
    it('records each source’s copy of a study, answers them by study in source order, releases one', async () => {
      await store.holdings.record('b', [{ studyUid: '1.1', json: '{"b":1}' }], at(0));
      await store.holdings.record(
        'a',
        [
          { studyUid: '1.1', json: '{"a":1}' },
          { studyUid: '1.2', json: '{"a":2}' },
        ],
        at(1),
      );
      // A second record replaces the source's copy.
      await store.holdings.record('b', [{ studyUid: '1.1', json: '{"b":2}' }], at(2));
      const held = await store.holdings.of(['1.1', '1.2', '1.3', '1.1']);
      expect([...held.keys()].sort()).toEqual(['1.1', '1.2']);
      expect(held.get('1.1')).toEqual([
        { studyUid: '1.1', sourceId: 'a', json: '{"a":1}', updatedAt: iso(1) },
        { studyUid: '1.1', sourceId: 'b', json: '{"b":2}', updatedAt: iso(2) },
      ]);
      await store.holdings.release('a', '1.1');
      await store.holdings.release('a', '9.9'); // nothing held: nothing happens
      expect((await store.holdings.of(['1.1'])).get('1.1')?.map((h) => h.sourceId)).toEqual(['b']);
      expect(await store.holdings.of([])).toEqual(new Map());
    });
  });

  describe('sweeps', () => {
    it('open, resume, advance and complete with coverage', async () => {
      const s = await store.sweeps.open('a', at(0));
      expect(s).toMatchObject({ sourceId: 'a', startedAt: iso(0), listed: 0, undatedDone: false, completedAt: null });
      expect((await store.sweeps.open('a', at(5))).id).toBe(s.id); // resumed, not a second one
      await store.sweeps.advance(s.id, { throughDate: '20250101', listed: 3 });
      await store.sweeps.advance(s.id, { listed: 2, undatedDone: true });
      await store.sweeps.advance(s.id, { listed: 0, undatedDone: false });
      expect(await store.sweeps.current('a')).toMatchObject({
        id: s.id,
        throughDate: '20250101',
        listed: 5,
        undatedDone: true,
      });
      await store.studies.recordSynced('a', [synced('old', -10), synced('n1', 1), synced('n2', 2)]);
      await store.studies.recordFailures('a', [failure('n3', { at: at(3) })]);
      const done = await store.sweeps.complete(s.id, { vanished: 1, unresolved: 0, at: at(10) });
      expect(done).toMatchObject({ completedAt: iso(10), synced: 2, failing: 1, dead: 0, vanished: 1, unresolved: 0 });
      expect(await store.sweeps.current('a')).toBeUndefined();
      expect(await store.sweeps.lastComplete('a')).toEqual(done);
      const next = await store.sweeps.open('a', at(20));
      expect(next.id).toBeGreaterThan(s.id);
      expect(await store.sweeps.lastComplete('b')).toBeUndefined();
    });

    it('records the removals a sweep held, and an operator confirming them once, the first time kept', async () => {
      const plain = await store.sweeps.open('a', at(0));
      expect((await store.sweeps.complete(plain.id, { vanished: 0, unresolved: 0, at: at(1) })).held).toBeNull();
      expect(await store.sweeps.confirmHeld('a', at(2))).toBeUndefined(); // nothing held: nothing to confirm

      const heldSweep = await store.sweeps.open('a', at(10));
      const hold = { removals: 80, of: 100, limit: 10 };
      const done = await store.sweeps.complete(heldSweep.id, { vanished: 80, unresolved: 0, held: hold, at: at(11) });
      expect(done).toMatchObject({ vanished: 80, held: { ...hold, confirmedAt: null } });
      expect((await store.sweeps.lastComplete('a'))?.held).toEqual({ ...hold, confirmedAt: null });
      expect(await store.sweeps.confirmHeld('b', at(12))).toBeUndefined(); // another source holds nothing

      const confirmed = await store.sweeps.confirmHeld('a', at(12));
      expect(confirmed).toMatchObject({ id: heldSweep.id, held: { ...hold, confirmedAt: iso(12) } });
      expect((await (await replica()).sweeps.confirmHeld('a', at(13)))?.held?.confirmedAt).toBe(iso(12));
      expect((await store.sweeps.lastComplete('a'))?.held?.confirmedAt).toBe(iso(12));
      expect((await store.sweeps.lastComplete('a'))?.id).toBe(heldSweep.id);
    });

    it('lets a hold lapse once a later sweep completes without one: it can no longer be confirmed', async () => {
      const heldSweep = await store.sweeps.open('a', at(0));
      await store.sweeps.complete(heldSweep.id, {
        vanished: 3,
        unresolved: 0,
        held: { removals: 3, of: 4, limit: 0 },
        at: at(1),
      });
      const later = await store.sweeps.open('a', at(2));
      // Open but not complete: the hold still stands and can be confirmed for this sweep to apply.
      expect((await store.sweeps.lastComplete('a'))?.held).toMatchObject({ removals: 3 });
      await store.sweeps.complete(later.id, { vanished: 0, unresolved: 0, at: at(3) });
      expect(await store.sweeps.confirmHeld('a', at(4))).toBeUndefined();
      expect((await store.sweeps.lastComplete('a'))?.held).toBeNull();
      // The lapsed hold stays as it was recorded, unconfirmed.
      expect(await store.sweeps.confirmHeld('a', at(5))).toBeUndefined();
    });

    it('opens one sweep when two replicas open at once', async () => {
      const other = await replica();
      const [x, y] = await Promise.all([store.sweeps.open('a', at(0)), other.sweeps.open('a', at(1))]);
      expect(x.id).toBe(y.id);
    });
  });

  describe('feed state', () => {
    it('records pages as a compare-and-set on the checkpoint', async () => {
      expect(await store.feed.recordPage('a', 'orthanc', undefined, 10, [{ studyRef: 'x', ready: false }], at(0))).toBe(
        true,
      );
      // Another reader of the same page: refused, nothing written.
      expect(await store.feed.recordPage('a', 'orthanc', undefined, 12, [{ studyRef: 'y', ready: true }], at(1))).toBe(
        false,
      );
      expect(await store.feed.recordPage('a', 'orthanc', 9, 12, [{ studyRef: 'y', ready: true }], at(1))).toBe(false);
      expect(await store.feed.pendingSummary('a')).toEqual({ count: 1, oldest: iso(0) });
      expect(await store.feed.recordPage('a', 'orthanc', 10, 20, [{ studyRef: 'x', ready: true }], at(2))).toBe(true);
      expect(await store.feed.recordPage('a', 'orthanc', 20, 25, [{ studyRef: 'x', ready: false }], at(3))).toBe(true);
      expect(await store.feed.checkpoint('a')).toEqual({ feedType: 'orthanc', lastSeq: 25, updatedAt: iso(3) });
      // Ready stays ready; first sighting kept, last event moved.
      expect(await store.feed.duePending('a', at(-100), 10)).toEqual([
        { studyRef: 'x', ready: true, firstSeen: iso(0), lastEvent: iso(3) },
      ]);
    });

    it('lets exactly one of two replicas record the same page, the first page included', async () => {
      const other = await replica();
      const page = (s: StateStore, expected: number | undefined, ref: string) =>
        s.feed.recordPage('a', 'orthanc', expected, (expected ?? 0) + 5, [{ studyRef: ref, ready: true }], at(0));
      for (const expected of [undefined, 5]) {
        const won = await Promise.all([page(store, expected, 'mine'), page(other, expected, 'theirs')]);
        expect(won.filter(Boolean)).toHaveLength(1);
      }
      expect((await store.feed.checkpoint('a'))!.lastSeq).toBe(10);
      expect((await store.feed.pendingSummary('a')).count).toBeLessThanOrEqual(2);
    });

    it('lists due studies oldest first, and removes only those handled since their last event', async () => {
      await store.feed.recordPage('a', 'orthanc', undefined, 1, [{ studyRef: 'quiet', ready: false }], at(0));
      await store.feed.recordPage('a', 'orthanc', 1, 2, [{ studyRef: 'ready', ready: true }], at(10));
      await store.feed.recordPage('a', 'orthanc', 2, 3, [{ studyRef: 'busy', ready: false }], at(20));
      expect((await store.feed.duePending('a', at(5), 10)).map((p) => p.studyRef)).toEqual(['quiet', 'ready']);
      expect((await store.feed.duePending('a', at(5), 1)).map((p) => p.studyRef)).toEqual(['quiet']);
      await store.feed.recordPage('a', 'orthanc', 3, 4, [{ studyRef: 'quiet', ready: false }], at(30));
      await store.feed.removePending('a', ['quiet', 'ready', 'busy'], at(25));
      expect((await store.feed.duePending('a', at(100), 10)).map((p) => p.studyRef)).toEqual(['quiet']);
      await store.feed.setCheckpoint('a', 'orthanc', 1, at(40)); // the feed went back
      expect((await store.feed.checkpoint('a'))!.lastSeq).toBe(1);
    });

    it('keeps a sweep request until a sweep starting after it completes', async () => {
      await store.feed.requestSweep('a', 'feed went back', at(10));
      expect(await store.feed.sweepRequest('a')).toEqual({ requestedAt: iso(10), reason: 'feed went back' });
      await store.feed.clearSweepRequest('a', at(5)); // that sweep started before the request
      expect(await store.feed.sweepRequest('a')).toBeDefined();
      await store.feed.clearSweepRequest('a', at(10));
      expect(await store.feed.sweepRequest('a')).toBeUndefined();
    });
  });

  describe('leases and runs', () => {
    it('grants, refuses, takes over expired or abandoned leases, and renews only for the holder', async () => {
      expect(await store.runs.acquireLease('a', 'p1', 60_000, undefined, at(0))).toEqual({ ok: true });
      expect(await store.runs.acquireLease('a', 'p1', 60_000, undefined, at(1))).toEqual({ ok: true }); // its own
      expect(await store.runs.acquireLease('a', 'p2', 60_000, undefined, at(2))).toEqual({ ok: false, holder: 'p1' });
      expect(await store.runs.acquireLease('a', 'p2', 60_000, (h) => h === 'p1', at(2))).toEqual({ ok: true });
      expect(await store.runs.renewLease('a', 'p1', 60_000, at(3))).toBe(false);
      expect(await store.runs.renewLease('a', 'p2', 60_000, at(3))).toBe(true);
      // Expired (renewed at 3 s for 60 s): anyone's.
      expect(await store.runs.acquireLease('a', 'p3', 60_000, undefined, at(62))).toEqual({ ok: false, holder: 'p2' });
      expect(await store.runs.acquireLease('a', 'p3', 60_000, undefined, at(63))).toEqual({ ok: true });
      await store.runs.releaseLease('a', 'p2'); // not the holder: nothing happens
      expect(await store.runs.acquireLease('a', 'p4', 60_000, undefined, at(64))).toEqual({ ok: false, holder: 'p3' });
      await store.runs.releaseLease('a', 'p3');
      expect(await store.runs.renewLease('a', 'p3', 60_000, at(64))).toBe(false);
      expect(await store.runs.acquireLease('a', 'p4', 60_000, undefined, at(64))).toEqual({ ok: true });
    });

    it('gives a contended lease to exactly one of two replicas', async () => {
      const other = await replica();
      const tries = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? other : store).runs.acquireLease('lane', `owner-${i}`, 60_000)),
      );
      const winners = tries.filter((t) => t.ok);
      expect(winners).toHaveLength(1);
      const holder = tries.find((t) => !t.ok) as { ok: false; holder: string };
      expect(tries.every((t) => t.ok || t.holder === holder.holder)).toBe(true);
    });

    it('records runs and lists the newest first, by kind', async () => {
      const r1 = await store.runs.startRun('a', 'poll', at(0), 'host-1:11');
      const r2 = await store.runs.startRun('a', 'sweep', at(1));
      const r3 = await store.runs.startRun('a', 'backfill', at(2), 'host-2:22');
      await store.runs.updateRunCounts(r1, { found: 3 });
      await store.runs.finishRun(r1, { status: 'ok', counts: { found: 3, written: 2 }, at: at(5) });
      let runs = await store.runs.listRuns('a');
      expect(runs.map((r) => r.runId)).toEqual([r3, r2, r1]);
      expect(runs[2]).toEqual({
        runId: r1,
        sourceId: 'a',
        kind: 'poll',
        startedAt: iso(0),
        endedAt: iso(5),
        status: 'ok',
        counts: { found: 3, written: 2 },
        error: null,
        owner: 'host-1:11',
      });
      expect((await store.runs.listRuns('a', 1)).map((r) => r.runId)).toEqual([r3]);
      expect((await store.runs.listRuns('a', 20, 'sweep')).map((r) => r.runId)).toEqual([r2]);
      // Each lane closes only its own runs; a backfill run (no lease: replicas share it) is closed only by owner.
      const r4 = await store.runs.startRun('a', 'poll', at(3));
      expect(await store.runs.closeAbandonedRuns('a', 'other')).toBe(1);
      runs = await store.runs.listRuns('a');
      expect(runs.map((r) => [r.runId, r.status])).toEqual([
        [r4, 'interrupted'],
        [r3, 'running'],
        [r2, 'running'],
        [r1, 'ok'],
      ]);
      expect(await store.runs.closeAbandonedRuns('a', 'sweep')).toBe(1);
      expect(await store.runs.closeRunsOf(['host-1:11', 'host-3:33'], 'backfill')).toBe(0);
      expect(await store.runs.closeRunsOf(['host-2:22'], 'backfill')).toBe(1);
      expect((await store.runs.listRuns('a', 1))[0]).toMatchObject({ runId: r4 });
      expect((await store.runs.listRuns('a', 20, 'backfill'))[0]).toMatchObject({ status: 'interrupted' });
      await store.runs.startRun('b', 'poll');
      expect(await store.runs.closeAbandonedRuns()).toBe(1);
    });
  });

  describe('work queue', () => {
    const job = 'backfill:a:20240101-20241231';
    const windows = (n: number) => Array.from({ length: n }, (_, i) => ({ payload: { from: `w${i}` } }));

    it('enqueues a job once and hands out its items in order', async () => {
      await store.work.enqueue(job, 'a', windows(3));
      await store.work.enqueue(job, 'a', windows(5)); // a second replica joining: nothing added
      expect(await store.work.progress(job)).toEqual({ pending: 3, claimed: 0, done: 0 });
      const a = await store.work.claim(job, 'r1', 60_000, at(0));
      const b = await store.work.claim(job, 'r2', 60_000, at(0));
      expect(a).toMatchObject({ job, sourceId: 'a', payload: { from: 'w0' }, status: 'claimed', claimedBy: 'r1' });
      expect(a!.attempts).toBe(1);
      expect(b!.payload).toEqual({ from: 'w1' });
      expect(b!.id).toBeGreaterThan(a!.id);
      await store.work.complete(a!.id, 'r2'); // not its claim: nothing happens
      await store.work.complete(a!.id, 'r1');
      expect(await store.work.progress(job)).toEqual({ pending: 1, claimed: 1, done: 1 });
      await store.work.release(b!.id, 'r2');
      expect((await store.work.claim(job, 'r3', 60_000, at(1)))!.id).toBe(b!.id); // released: claimable at once
      expect((await store.work.claim(job, 'r3', 60_000, at(1)))!.payload).toEqual({ from: 'w2' });
      expect(await store.work.claim(job, 'r3', 60_000, at(1))).toBeUndefined();
      expect(await store.work.claim('other-job', 'r3', 60_000, at(1))).toBeUndefined();
    });

    it('records items an earlier run finished as done, and lists who holds the claimed ones', async () => {
      await store.work.enqueue(job, 'a', [
        { payload: { from: 'w0' }, done: true },
        { payload: { from: 'w1' } },
        { payload: { from: 'w2' } },
      ]);
      expect(await store.work.progress(job)).toEqual({ pending: 2, claimed: 0, done: 1 });
      const first = await store.work.claim(job, 'r1', 60_000, at(0));
      expect(first!.payload).toEqual({ from: 'w1' });
      expect(await store.work.claimed(job)).toEqual([expect.objectContaining({ id: first!.id, claimedBy: 'r1' })]);
      await store.work.release(first!.id, 'r1');
      expect(await store.work.claimed(job)).toEqual([]);
    });

    it('retakes an expired claim; the old claimant can no longer renew or complete it', async () => {
      await store.work.enqueue(job, 'a', windows(1));
      const first = await store.work.claim(job, 'dead', 1_000, at(0));
      expect(await store.work.claim(job, 'live', 1_000, at(0.5))).toBeUndefined();
      expect(await store.work.renew(first!.id, 'dead', 1_000, at(0.5))).toBe(true); // now until 1.5 s
      expect(await store.work.claim(job, 'live', 1_000, at(1.2))).toBeUndefined();
      const again = await store.work.claim(job, 'live', 60_000, at(1.5));
      expect(again).toMatchObject({ id: first!.id, claimedBy: 'live', attempts: 2 });
      expect(await store.work.renew(first!.id, 'dead', 1_000, at(2))).toBe(false);
      await store.work.complete(first!.id, 'dead');
      expect(await store.work.progress(job)).toEqual({ pending: 0, claimed: 1, done: 0 });
    });

    it('never gives one item to two of 20 concurrent claimers on two replicas', async () => {
      const other = await replica();
      await store.work.enqueue(job, 'a', windows(30));
      const claims = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? other : store).work.claim(job, `r${i}`, 60_000)),
      );
      const ids = claims.map((c) => c!.id);
      expect(new Set(ids).size).toBe(20);
      expect(await store.work.progress(job)).toEqual({ pending: 10, claimed: 20, done: 0 });
    });

    it('lists the open jobs of given sources', async () => {
      await store.work.enqueue('backfill:b:2', 'b', windows(1));
      await store.work.enqueue(job, 'a', windows(1));
      await store.work.enqueue('backfill:a:0-done', 'a', windows(1));
      await store.work.enqueue('backfill:c:1', 'c', windows(1));
      const item = await store.work.claim('backfill:a:0-done', 'r', 60_000);
      await store.work.complete(item!.id, 'r');
      await store.work.claim(job, 'r', 60_000); // claimed, not done: still open
      expect(await store.work.openJobs(['a', 'b'])).toEqual([
        { job, sourceId: 'a' },
        { job: 'backfill:b:2', sourceId: 'b' },
      ]);
      expect(await store.work.openJobs([])).toEqual([]);
    });

    it('enqueues a job once when two replicas start it at once', async () => {
      const other = await replica();
      await Promise.all([store.work.enqueue(job, 'a', windows(4)), other.work.enqueue(job, 'a', windows(4))]);
      expect(await store.work.progress(job)).toEqual({ pending: 4, claimed: 0, done: 0 });
    });
  });

  describe('resources', () => {
    const study = (id: string, over: Partial<ImagingStudy> = {}) =>
      ({ resourceType: 'ImagingStudy', id, status: 'available', subject: {}, ...over }) as ImagingStudy & {
        id: string;
      };

    it('versions on content change only and keeps who created it', async () => {
      const put = (hash: string, createdByBridge?: boolean, seconds = 0) =>
        store.resources.put([
          {
            resource: study('s1', { description: hash }),
            contentHash: hash,
            sourceId: 'a',
            studyUid: 'u1',
            createdByBridge,
            at: at(seconds),
          },
        ]);
      expect(await put('h1', false)).toEqual([
        { versionId: '1', unchanged: false, created: true, createdByBridge: false },
      ]);
      expect(await put('h1', true, 1)).toEqual([
        { versionId: '1', unchanged: true, created: false, createdByBridge: false },
      ]);
      expect(await put('h2', true, 2)).toEqual([
        { versionId: '2', unchanged: false, created: false, createdByBridge: false },
      ]);
      const stored = await store.resources.get<ImagingStudy>('ImagingStudy', 's1');
      expect(stored).toMatchObject({ description: 'h2', meta: { versionId: '2', lastUpdated: iso(2) } });
      expect(await store.resources.getMeta('ImagingStudy', 's1')).toEqual({
        resourceType: 'ImagingStudy',
        id: 's1',
        sourceId: 'a',
        studyUid: 'u1',
        versionId: 2,
        contentHash: 'h2',
        createdByBridge: false,
        lastUpdated: iso(2),
      });
      expect(await store.resources.studyResource('a', 'u1')).toMatchObject({ id: 's1', versionId: 2 });
      expect(await store.resources.studyResource('a', 'u2')).toBeUndefined();
    });

    it('numbers versions in turn when replicas write one new resource at once', async () => {
      const other = await replica();
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          (i % 2 ? other : store).resources.put([{ resource: study('v1'), contentHash: `h${i}`, sourceId: 'a' }]),
        ),
      );
      expect(results.map((r) => Number(r[0].versionId)).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(results.filter((r) => r[0].created)).toHaveLength(1);
    });

    it('versions a resource put twice in one batch in order', async () => {
      const results = await store.resources.put([
        { resource: study('t1', { description: 'one' }), contentHash: 'h1', sourceId: 'a' },
        { resource: study('t2'), contentHash: 'x', sourceId: 'a' },
        { resource: study('t1', { description: 'one' }), contentHash: 'h1', sourceId: 'a' },
        { resource: study('t1', { description: 'two' }), contentHash: 'h2', sourceId: 'a' },
      ]);
      expect(results.map((r) => [r.versionId, r.created, r.unchanged])).toEqual([
        ['1', true, false],
        ['1', true, false],
        ['1', false, true],
        ['2', false, false],
      ]);
      expect(await store.resources.get('ImagingStudy', 't1')).toMatchObject({
        description: 'two',
        meta: { versionId: '2' },
      });
    });

    it('stores nothing of a batch that fails midway', async () => {
      const good = { resource: study('g1'), contentHash: 'h', sourceId: 'a', studyUid: 'g1' };
      const bad = { resource: study('b1'), contentHash: null as unknown as string, sourceId: 'a', studyUid: 'b1' };
      // Matched by message: a native (SQLite) error may come from another realm than the test's Error.
      await expect(store.resources.put([good, bad])).rejects.toHaveProperty('message', expect.stringMatching(/null/i));
      expect(await store.resources.get('ImagingStudy', 'g1')).toBeUndefined();
      expect(await store.resources.searchImagingStudies({ sourceId: 'a' }, { limit: 10 })).toEqual([]);
      await store.resources.put([good]);
      expect((await store.resources.listImagingStudies({ sourceId: 'a' })).map((s) => s.id)).toEqual(['g1']);
    });

    it('deletes a resource and its index entries', async () => {
      await store.resources.put([
        { resource: study('d1'), contentHash: 'h', sourceId: 'a' },
        { resource: { resourceType: 'Endpoint', id: 'e1' } as never, contentHash: 'e' },
      ]);
      expect(await store.resources.delete('ImagingStudy', 'd1')).toBe(true);
      expect(await store.resources.delete('ImagingStudy', 'd1')).toBe(false);
      expect(await store.resources.searchImagingStudies({ sourceId: 'a' }, { limit: 10 })).toEqual([]);
      expect(await store.resources.get('Endpoint', 'e1')).toMatchObject({ id: 'e1' });
      expect(await store.resources.listImagingStudies()).toEqual([]);
    });

    describe('search index', () => {
      // Ids in both cases and with punctuation: keyset paging must follow byte order on every backend.
      const odd = ['Z-9', 'a-1', 'a_2', 'B.1'];
      const studies = [
        ...Array.from({ length: 40 }, (_, i) => storedStudy('a', i)),
        ...odd.map((id, i) => ({ ...storedStudy('a', 100 + i), id })),
        storedStudy('b', 1),
      ];
      const rows = studies.map((s) => studyIndexRow(s, s.id, s.id.startsWith('1.2.826.0.1.3680043.10.98') ? 'b' : 'a'));

      /** The filter's meaning, evaluated over the pure index rows: the oracle both backends must equal. */
      const expected = (f: StudyIndexFilter) =>
        rows
          .filter(
            (r) =>
              r.sourceId === f.sourceId &&
              (f.tokens ?? []).every((any) =>
                any.some((t) => r.tokens.some((x) => x.kind === t.kind && x.value === t.value)),
              ) &&
              (f.dayFrom === undefined || (r.startedDay !== null && r.startedDay >= f.dayFrom)) &&
              (f.dayTo === undefined || (r.startedDay !== null && r.startedDay <= f.dayTo)) &&
              (f.instant ?? []).every(
                (b) =>
                  r.startedMs === null ||
                  ((b.from === undefined || r.startedMs >= b.from) && (b.to === undefined || r.startedMs < b.to)),
              ) &&
              (f.statuses ?? []).every((any) => r.status !== null && any.includes(r.status)),
          )
          .map((r) => r.resourceId)
          .sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));

      const search = async (f: StudyIndexFilter, limit = 1000, after?: string) =>
        (await store.resources.searchImagingStudies(f, { limit, after })).map((s) => s.id!);

      beforeEach(async () => {
        await store.resources.put(
          studies.map((s, i) => ({ resource: s, contentHash: `h${i}`, sourceId: rows[i].sourceId, studyUid: s.id })),
        );
      });

      const filters: [string, Omit<StudyIndexFilter, 'sourceId'>][] = [
        ['everything of the source', {}],
        ['one modality', { tokens: [[{ kind: 'modality', value: 'MR' }]] }],
        [
          'any of two patients, and a modality',
          {
            tokens: [
              [
                { kind: 'patient', value: 'P3' },
                { kind: 'patient', value: 'P8' },
              ],
              [{ kind: 'modality', value: 'CT' }],
            ],
          },
        ],
        ['a series UID', { tokens: [[{ kind: 'series', value: `${storedStudy('a', 7).id}.2` }]] }],
        ['an empty alternative', { tokens: [[]] }],
        ['a day range', { dayFrom: '20240110', dayTo: '20240220' }],
        [
          'an instant range',
          { instant: [{ from: Date.parse('2024-01-05T00:00:00Z'), to: Date.parse('2024-02-10T00:00:00Z') }] },
        ],
        ['statuses', { statuses: [['entered-in-error']] }],
        ['an empty status list', { statuses: [[]] }],
        ['days and statuses', { dayFrom: '20240201', statuses: [['available', 'registered']] }],
      ];

      it.each(filters)('%s', async (name, f) => {
        const filter = { sourceId: 'a', ...f };
        const want = expected(filter);
        if (!name.includes('empty')) expect(want.length).toBeGreaterThan(0); // the case has matches to find
        expect(await search(filter)).toEqual(want);
      });

      it('pages by resource id in byte order', async () => {
        const filter = { sourceId: 'a' };
        const all = expected(filter);
        expect(all.slice(0, 4)).toEqual([
          '1.2.826.0.1.3680043.10.97.0',
          '1.2.826.0.1.3680043.10.97.1',
          '1.2.826.0.1.3680043.10.97.10',
          '1.2.826.0.1.3680043.10.97.11',
        ]);
        expect(all.slice(-4)).toEqual(['B.1', 'Z-9', 'a-1', 'a_2']);
        const pages: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await search(filter, 7, after);
          pages.push(...page);
          if (page.length < 7) break;
          after = page[page.length - 1];
        }
        expect(pages).toEqual(all);
        expect(await search({ sourceId: 'b' })).toEqual([storedStudy('b', 1).id]);
      });
    });
  });

  describe('the store', () => {
    it('pings with a rolled-back write', async () => {
      expect(await store.ping()).toMatch(/^writable \(/);
      await store.checkpoints.advance('a', '20250101');
      expect(await store.ping()).toMatch(/^writable/);
      expect(await store.checkpoints.get('a')).toBe('20250101');
    });

    it('refuses a ping once closed', async () => {
      const other = await replica();
      await other.close();
      await expect(other.ping()).rejects.toThrow(/closed/);
      expect(await store.ping()).toMatch(/^writable/);
    });

    it('migrates once when two stores open one new database at once', async () => {
      const [x, y] = await Promise.all([replica(), replica()]);
      expect(await x.ping()).toBe(await y.ping());
      await x.checkpoints.advance('a', '20250101');
      expect(await y.checkpoints.get('a')).toBe('20250101');
    });
  });
});
