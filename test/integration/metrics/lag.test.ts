/**
 * Sync lag that knows the change feed: a source whose last poll is two hours old but whose feed (Orthanc's
 * /changes, StableAge 1 s) keeps reading to its head shows a lag of seconds on the status page and in /metrics,
 * also while nothing arrives; the status page's chart shows the feed's runs, each with the lag it left behind.
 * A study the feed named that is not synced yet holds the lag at its first event. Real Orthanc, embedded store.
 */
import { buildStatusModel } from '../../../src/api/ops/statusPage';
import { runChartSvg } from '../../../src/api/ops/chart';
import { createMetrics, feedCurrentAt, syncLagSeconds } from '../../../src/metrics';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService, type SyncService } from '../../../src/sync';
import { loadStudies, makeStudy } from '../../fixtures/synthetic';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { until } from '../../harness/until';
import { SOURCE_ID, sourceConfig, storedStudy } from '../sync/common';
import { parsePrometheus, sampleValue } from './promText';

const NEVER = '0 0 1 1 *';
const TWO_HOURS = 7200;

let orthanc: OrthancServer;
let store: SqliteStateStore;
let sync: SyncService;

beforeAll(async () => {
  orthanc = await startOrthanc({ stableAge: 1 });
  store = openSqliteStore(':memory:');
  // The last poll, two hours ago: without the feed the lag would be two hours.
  const pollAt = new Date(Date.now() - TWO_HOURS * 1000);
  const poll = await store.runs.startRun(SOURCE_ID, 'poll', pollAt);
  await store.runs.finishRun(poll, { status: 'ok', counts: {}, at: new Date(pollAt.getTime() + 1000) });
  sync = createSyncService({
    config: {
      sources: [sourceConfig(orthanc.dicomWebBase, { changeFeed: { intervalSeconds: 0.2 } })],
      sync: { cron: NEVER, sweep: { cron: NEVER } },
    },
    store,
    sinks: [createEmbeddedSink(store)],
  });
}, 60000);

afterAll(async () => {
  await sync?.stop();
  store?.close();
  await orthanc?.stop();
});

async function scrapedLag(): Promise<number | undefined> {
  const m = createMetrics().observe({ store });
  return sampleValue(parsePrometheus((await m.scrape()).body), 'pacs_fhir_bridge_sync_lag_seconds', {
    source: SOURCE_ID,
  });
}

it('is seconds, not the two hours since the last poll, on the status page and in /metrics', async () => {
  const before = (await buildStatusModel(store, [SOURCE_ID], new Date(), 50)).sources[0]!;
  expect(before.lagSeconds).toBeGreaterThan(TWO_HOURS - 60);

  sync.start();
  await until('the feed checkpoint', () => store.feed.checkpoint(SOURCE_ID));
  const study = makeStudy({ studyDate: '20150505' });
  await loadStudies(orthanc, [study]);
  await until('the study through the feed', () => storedStudy(store, study.studyUid));
  await until('the feed run recorded', async () =>
    (await store.runs.listRuns(SOURCE_ID, 10)).find((r) => r.kind === 'feed' && r.status === 'ok'),
  );

  const page = (await buildStatusModel(store, [SOURCE_ID], new Date(), 50)).sources[0]!;
  expect(page.lagSeconds).toBeLessThan(10);
  const lag = await scrapedLag();
  expect(lag).toBeDefined();
  expect(lag!).toBeLessThan(10);

  // The chart: the feed run is a point of its own, with the (small) lag it left behind, drawn as a feed bar.
  const feedPoint = page.chart.find((p) => p.kind === 'feed');
  expect(feedPoint).toMatchObject({ status: 'ok', written: 1 });
  expect(feedPoint!.lagSeconds!).toBeLessThan(10);
  expect(page.chart.find((p) => p.kind === 'poll')!.lagSeconds).toBeLessThan(5);
  expect(runChartSvg(page.chart, 'runs')).toMatch(/<rect class="bar feed"[^>]*><title>[^<]* feed ok: 1 written/);
}, 60000);

it('stays seconds while nothing arrives: every read of the feed to its head keeps it current', async () => {
  const readBefore = (await store.feed.checkpoint(SOURCE_ID))!.updatedAt;
  await new Promise((r) => setTimeout(r, 3000));
  expect((await store.feed.checkpoint(SOURCE_ID))!.updatedAt > readBefore).toBe(true);
  const page = (await buildStatusModel(store, [SOURCE_ID], new Date(), 50)).sources[0]!;
  expect(page.lagSeconds).toBeLessThan(2);
  expect(await scrapedLag()).toBeLessThan(2);
});

it('a study the feed named but has not synced holds the lag at its first event', () => {
  const now = new Date('2026-01-01T12:00:00Z');
  const feed = { checkpoint: { updatedAt: '2026-01-01T11:59:59Z' }, oldestPending: '2026-01-01T11:58:00Z' };
  expect(feedCurrentAt(feed)?.toISOString()).toBe('2026-01-01T11:58:00.000Z');
  expect(syncLagSeconds([], now, undefined, feed)).toBe(120);
  expect(syncLagSeconds([], now, undefined, { ...feed, oldestPending: null })).toBe(1);
  // No feed state (a source without a feed): polls alone, as before.
  expect(syncLagSeconds([], now, undefined, { oldestPending: null })).toBeUndefined();
});
