import { planWindows, pollRange } from '../../../src/sync/dates';
import { addDays, todayIn } from '../../../src/time';
import { decideStudy, retryDelaySeconds } from '../../../src/sync/decide';
import { syncSchema, syncSettingsFor } from '../../../src/sync/config';
import { storeSchema } from '../../../src/state';
import type { StudyState } from '../../../src/state';

describe('StudyDate windows', () => {
  it('covers the range with consecutive windows, the last one clipped', async () => {
    expect(planWindows('20240227', '20240305', 3)).toEqual([
      { from: '20240227', to: '20240229' },
      { from: '20240301', to: '20240303' },
      { from: '20240304', to: '20240305' },
    ]);
    expect(planWindows('20240101', '20240101', 7)).toEqual([{ from: '20240101', to: '20240101' }]);
    expect(planWindows('20240102', '20240101', 7)).toEqual([]);
  });

  it('rejects dates that are not calendar dates', async () => {
    expect(() => planWindows('20240230', '20240301', 1)).toThrow(/calendar/);
    expect(() => addDays('2024-01-01', 1)).toThrow(/YYYYMMDD/);
  });

  it('polls from the checkpoint or the lookback, whichever is earlier', async () => {
    expect(pollRange({ today: '20240310', lookbackDays: 3 })).toEqual({ from: '20240307', to: '20240310' });
    expect(pollRange({ today: '20240310', lookbackDays: 3, checkpoint: '20240310' })).toEqual({
      from: '20240307',
      to: '20240310',
    });
    expect(pollRange({ today: '20240310', lookbackDays: 3, checkpoint: '20240201' })).toEqual({
      from: '20240202',
      to: '20240310',
    });
    expect(pollRange({ today: '20240310', lookbackDays: 3, backfillFrom: '20230101' })).toEqual({
      from: '20230101',
      to: '20240310',
    });
  });

  it("takes today in the PACS's time zone", async () => {
    const lateUtc = new Date('2024-03-10T20:00:00Z');
    expect(todayIn('Asia/Taipei', lateUtc)).toBe('20240311');
    expect(todayIn('+0800', lateUtc)).toBe('20240311');
    expect(todayIn('-0500', lateUtc)).toBe('20240310');
  });
});

describe('what a run does with a study', () => {
  const now = new Date('2024-03-10T00:00:00Z');
  const state = (over: Partial<StudyState>): StudyState => ({
    sourceId: 's',
    studyUid: '1.2',
    studyDate: null,
    status: 'synced',
    fingerprint: 'fp',
    contentHash: 'h',
    resourceId: null,
    versionId: null,
    lastSeen: null,
    attempts: 0,
    nextRetryAt: null,
    lastError: null,
    reason: null,
    dead: false,
    createdByBridge: true,
    updatedAt: '',
    ...over,
  });

  it('fetches new and changed studies, skips unchanged ones', async () => {
    expect(decideStudy(undefined, 'fp', now)).toBe('fetch');
    expect(decideStudy(state({}), 'fp', now)).toBe('unchanged');
    expect(decideStudy(state({}), 'other', now)).toBe('fetch');
    expect(decideStudy(state({ status: 'removed' }), 'fp', now)).toBe('fetch');
  });

  it('waits out the backoff of a failing study unless it changed, and leaves dead letters alone', async () => {
    expect(decideStudy(state({ status: 'failing', nextRetryAt: '2024-03-10T01:00:00Z' }), 'fp', now)).toBe('backoff');
    expect(decideStudy(state({ status: 'failing', nextRetryAt: '2024-03-09T23:00:00Z' }), 'fp', now)).toBe('fetch');
    expect(decideStudy(state({ status: 'failing', nextRetryAt: '2024-03-10T01:00:00Z' }), 'new', now)).toBe('fetch');
    expect(decideStudy(state({ status: 'dead' }), 'new', now)).toBe('dead');
  });

  it('leaves a quarantined study alone, changed or not, until it is replayed', async () => {
    expect(decideStudy(state({ status: 'quarantined', reason: 'study-uid-conflict' }), 'fp', now)).toBe('quarantined');
    expect(decideStudy(state({ status: 'quarantined', reason: 'study-uid-conflict' }), 'new', now)).toBe('quarantined');
  });

  it('doubles the retry delay per attempt up to the cap', async () => {
    expect([1, 2, 3, 4].map((n) => retryDelaySeconds(n, 60, 200))).toEqual([60, 120, 200, 200]);
    expect(retryDelaySeconds(1000, 60, 86400)).toBe(86400);
  });
});

describe('sync configuration', () => {
  it('has defaults and merges per-source overrides', async () => {
    const cfg = syncSchema.parse({
      maxAttempts: 3,
      sources: { ct: { filter: { ModalitiesInStudy: 'CT' }, reconcile: { deletion: 'delete' } } },
    });
    expect(cfg.lookbackDays).toBe(3);
    const ct = syncSettingsFor(cfg, 'ct');
    expect(ct).toMatchObject({
      maxAttempts: 3,
      filter: { ModalitiesInStudy: 'CT' },
      reconcile: { deletion: 'delete' },
    });
    expect(syncSettingsFor(cfg, 'other')).toMatchObject({ filter: {}, reconcile: { deletion: 'ignore' } });
    expect(storeSchema.parse(undefined)).toMatchObject({ type: 'sqlite', path: './data/bridge.sqlite' });
  });

  it('lists every problem', async () => {
    const r = syncSchema.safeParse({
      cron: 'every minute',
      backfillFrom: '2024/01/01',
      reconcile: { deletion: 'purge' },
      bogus: 1,
    });
    expect(r.success).toBe(false);
    const paths = r.success ? [] : r.error.issues.map((i) => i.path.join('.') || i.code);
    expect(paths).toEqual(expect.arrayContaining(['cron', 'backfillFrom', 'reconcile.deletion', 'unrecognized_keys']));
  });
});
