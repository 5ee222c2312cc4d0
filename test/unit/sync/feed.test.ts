/** The change feed's pure parts and its state in the store (checkpoint, pending studies, sweep requests). */
import { sourceStatus } from '../../../src/cli/sync';
import { configSchema, sourceSchema } from '../../../src/config';
import { orthancRestBase } from '../../../src/dicomweb/changeFeedOrthanc';
import { BridgeMetrics } from '../../../src/metrics';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { SqliteFeedState } from '../../../src/state/sqlite/feedState';
import { pendingUpdates } from '../../../src/sync/feed';

describe('pendingUpdates', () => {
  it('keeps study events once per study, ready when any event said so, and drops the rest', async () => {
    expect(
      pendingUpdates([
        { seq: 1, kind: 'other' },
        { seq: 2, kind: 'study-changing', studyRef: 'a' },
        { seq: 3, kind: 'study-changing', studyRef: 'b' },
        { seq: 4, kind: 'study-ready', studyRef: 'a' },
        { seq: 5, kind: 'study-changing', studyRef: 'a' },
        { seq: 6, kind: 'study-deleted', studyRef: 'c' },
      ]),
    ).toEqual([
      { studyRef: 'a', ready: true },
      { studyRef: 'b', ready: false },
    ]);
  });
});

describe('orthancRestBase', () => {
  const cfg = (qidoBase: string, restBase?: string) =>
    sourceSchema.parse({ id: 's', qidoBase, changeFeed: restBase ? { restBase } : {} });

  it('is the QIDO base without its last segment, unless configured', async () => {
    expect(orthancRestBase(cfg('http://pacs:8042/dicom-web'))).toBe('http://pacs:8042');
    expect(orthancRestBase(cfg('https://pacs.example/orthanc/dicom-web/'))).toBe('https://pacs.example/orthanc');
    expect(orthancRestBase(cfg('http://pacs:8042/dicom-web', 'http://admin:8042/'))).toBe('http://admin:8042');
  });
});

describe('SqliteFeedState', () => {
  let store: SqliteStateStore;
  let state: SqliteFeedState;
  const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));

  beforeEach(async () => {
    store = openSqliteStore(':memory:');
    state = store.feed;
  });
  afterEach(async () => await store.close());

  it('moves the checkpoint with its page only from the sequence number the reader started at', async () => {
    await state.setCheckpoint('s', 'orthanc', 10, t(0));
    expect(await state.recordPage('s', 'orthanc', 10, 15, [{ studyRef: 'a', ready: false }], t(1))).toBe(true);
    // A second reader that also started at 10 writes nothing.
    expect(await state.recordPage('s', 'orthanc', 10, 15, [{ studyRef: 'b', ready: true }], t(1))).toBe(false);
    expect(await state.checkpoint('s')).toMatchObject({ feedType: 'orthanc', lastSeq: 15 });
    expect(await state.pendingSummary('s')).toEqual({ count: 1, oldest: t(1).toISOString() });
  });

  it('makes a pending study due when ready, or quiet since the settle time', async () => {
    await state.setCheckpoint('s', 'orthanc', 0, t(0));
    await state.recordPage('s', 'orthanc', 0, 2, [{ studyRef: 'quiet', ready: false }], t(1));
    await state.recordPage('s', 'orthanc', 2, 4, [{ studyRef: 'busy', ready: false }], t(5));
    await state.recordPage('s', 'orthanc', 4, 5, [{ studyRef: 'stable', ready: true }], t(6));
    expect((await state.duePending('s', t(2), 10)).map((p) => p.studyRef)).toEqual(['quiet', 'stable']);
    // A later "changing" event does not undo "ready", and keeps the first sighting.
    await state.recordPage('s', 'orthanc', 5, 6, [{ studyRef: 'stable', ready: false }], t(7));
    expect(await state.duePending('s', t(0), 10)).toEqual([
      { studyRef: 'stable', ready: true, firstSeen: t(6).toISOString(), lastEvent: t(7).toISOString() },
    ]);
  });

  it('keeps a pending study that an event named again while it was being synced', async () => {
    await state.setCheckpoint('s', 'orthanc', 0, t(0));
    await state.recordPage(
      's',
      'orthanc',
      0,
      1,
      [
        { studyRef: 'a', ready: true },
        { studyRef: 'b', ready: true },
      ],
      t(1),
    );
    await state.recordPage('s', 'orthanc', 1, 2, [{ studyRef: 'b', ready: true }], t(3));
    await state.removePending('s', ['a', 'b'], t(2));
    expect((await state.duePending('s', t(9), 10)).map((p) => p.studyRef)).toEqual(['b']);
  });

  it('keeps a sweep request until a sweep that started after it completes', async () => {
    await state.requestSweep('s', 'feed went back', t(10));
    await state.clearSweepRequest('s', t(5));
    expect(await state.sweepRequest('s')).toEqual({ requestedAt: t(10).toISOString(), reason: 'feed went back' });
    await state.clearSweepRequest('s', t(10));
    expect(await state.sweepRequest('s')).toBeUndefined();
  });
});

describe('feed runs beside polls', () => {
  it('do not crowd the last poll out of status and the lag metric', async () => {
    const store = openSqliteStore(':memory:');
    try {
      const at = (m: number) => new Date(Date.UTC(2026, 0, 1, 0, m));
      const poll = await store.runs.startRun('s', 'poll', at(0));
      await store.runs.finishRun(poll, { status: 'ok', counts: {}, at: at(1) });
      // A busy morning: a feed run every few seconds, many more than status or a scrape look at.
      for (let i = 0; i < 150; i++) {
        const feed = await store.runs.startRun('s', 'feed', at(2));
        await store.runs.finishRun(feed, { status: 'ok', counts: { written: 1 }, at: at(2) });
      }
      const config = configSchema.parse({ sources: [{ id: 's', qidoBase: 'http://pacs/dicom-web' }] });
      const status = await sourceStatus(store, config, 's', at(10));
      expect(status.lastSuccessfulPoll).toBe(at(1).toISOString());
      expect(status.lastRun?.kind).toBe('feed');

      const metrics = new BridgeMetrics({ defaultMetrics: false });
      metrics.observe({ store });
      const text = (await metrics.scrape()).body;
      expect(text).toMatch(/pacs_fhir_bridge_sync_lag_seconds\{source="s"\} \d+/);
    } finally {
      await store.close();
    }
  });
});
