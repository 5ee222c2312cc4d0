/**
 * The metrics module over a real embedded store: run history becomes counters and histograms at scrape
 * time, store state becomes gauges, and the typed calls land in their series.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import NodeCache from 'node-cache';
import { createMetrics } from '../../../src/metrics';
import { sourceCoverage } from '../../../src/sync/sweepCoverage';
import { lagPerRun, syncLagSeconds } from '../../../src/metrics/lag';
import { openSqliteStore, type RunRecord, type SqliteStateStore } from '../../../src/state';
import { parsePrometheus, sampleSum, sampleValue } from './promText';

const P = 'pacs_fhir_bridge_';
let dir: string;
let store: SqliteStateStore;

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'h7-metrics-'));
  store = openSqliteStore(path.join(dir, 'bridge.sqlite'));
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const retry = { maxAttempts: 2, retryDelaySeconds: () => 60 };

async function finishedRun(
  sourceId: string,
  counts: RunRecord['counts'],
  startedAt: Date,
  seconds: number,
  status: 'ok' | 'partial' | 'failed' = 'ok',
  kind: RunRecord['kind'] = 'poll',
): Promise<string> {
  const id = await store.runs.startRun(sourceId, kind, startedAt);
  await store.runs.finishRun(id, { status, counts, at: new Date(startedAt.getTime() + seconds * 1000) });
  return id;
}

test('runs finished after the store is observed become counters, durations and lag; earlier runs are not counted', async () => {
  const t0 = new Date(Date.now() - 3600_000);
  await finishedRun('pacs-a', { found: 100, written: 100 }, new Date(t0.getTime() - 60_000), 10);
  const m = createMetrics().observe({ store });
  await m.whenObserved();

  await finishedRun('pacs-a', { found: 7, written: 4, unchanged: 2, failed: 1, dead: 1 }, t0, 12, 'partial');
  await finishedRun('pacs-a', { found: 3, written: 2 }, new Date(t0.getTime() + 600_000), 3);
  await finishedRun('pacs-b', {}, new Date(t0.getTime() + 60_000), 30, 'failed');

  const s = parsePrometheus((await m.scrape()).body);
  expect(sampleValue(s, `${P}studies_discovered_total`, { source: 'pacs-a' })).toBe(10);
  expect(sampleValue(s, `${P}studies_written_total`, { source: 'pacs-a' })).toBe(6);
  expect(sampleValue(s, `${P}studies_failed_total`, { source: 'pacs-a' })).toBe(1);
  expect(sampleValue(s, `${P}studies_dead_lettered_total`, { source: 'pacs-a' })).toBe(1);
  expect(sampleValue(s, `${P}studies_discovered_total`, { source: 'pacs-b' })).toBe(0);
  expect(sampleValue(s, `${P}sync_runs_total`, { source: 'pacs-a', kind: 'poll', status: 'partial' })).toBe(1);
  expect(sampleValue(s, `${P}sync_runs_total`, { source: 'pacs-b', kind: 'poll', status: 'failed' })).toBe(1);
  expect(sampleValue(s, `${P}sync_run_duration_seconds_count`, { source: 'pacs-a', kind: 'poll', status: 'ok' })).toBe(
    1,
  );
  expect(
    sampleValue(s, `${P}sync_run_duration_seconds_sum`, { source: 'pacs-a', kind: 'poll', status: 'partial' }),
  ).toBe(12);
  expect(
    sampleValue(s, `${P}sync_run_duration_seconds_sum`, { source: 'pacs-b', kind: 'poll', status: 'failed' }),
  ).toBe(30);

  // Lag: now minus the start of the newest completed poll (t0 + 10 min); pacs-b never completed one.
  const lag = sampleValue(s, `${P}sync_lag_seconds`, { source: 'pacs-a' })!;
  expect(lag).toBeGreaterThanOrEqual(3000);
  expect(lag).toBeLessThan(3000 + 120);
  expect(sampleValue(s, `${P}sync_lag_seconds`, { source: 'pacs-b' })).toBeUndefined();

  // A second scrape counts nothing twice; a new run adds only itself.
  await finishedRun('pacs-a', { found: 5, written: 1 }, new Date(), 1);
  const s2 = parsePrometheus((await m.scrape()).body);
  expect(sampleValue(s2, `${P}studies_discovered_total`, { source: 'pacs-a' })).toBe(15);
  expect(sampleValue(s2, `${P}studies_written_total`, { source: 'pacs-a' })).toBe(7);
  expect(sampleSum(s2, `${P}sync_runs_total`, { source: 'pacs-a' })).toBe(3);
  expect(sampleValue(s2, `${P}sync_lag_seconds`, { source: 'pacs-a' })!).toBeLessThan(120);
});

test('store state, source stats and caches are read at scrape time', async () => {
  await store.studies.recordSynced('pacs-a', [
    { studyUid: '1.2.3.1', studyDate: '20240101', fingerprint: 'f', contentHash: 'h' },
  ]);
  await store.studies.recordSynced('pacs-a', [
    { studyUid: '1.2.3.2', studyDate: '20240101', fingerprint: 'f', contentHash: 'h' },
  ]);
  await store.studies.recordFailures('pacs-a', [
    {
      studyUid: '1.2.3.3',
      studyDate: null,
      fingerprint: null,
      error: 'mapping failed',
      countAttempt: true,
      ...retry,
    },
  ]);
  await store.studies.recordFailures('pacs-a', [
    { studyUid: '1.2.3.4', studyDate: null, fingerprint: null, error: 'x', countAttempt: true, ...retry },
  ]);
  await store.studies.recordFailures('pacs-a', [
    { studyUid: '1.2.3.4', studyDate: null, fingerprint: null, error: 'x', countAttempt: true, ...retry },
  ]);

  const stats = { requests: { studies: 4, series: 2, instances: 1, metadata: 0, token: 0 }, retries: 3, splits: 1 };
  const cache = new NodeCache();
  cache.set('k', 1);
  cache.get('k');
  cache.get('k');
  cache.get('missing');
  const m = createMetrics().observe({ store, sources: [{ id: 'pacs-a', stats }], caches: { api: cache } });
  m.cacheLookup('studies', true);
  m.cacheLookup('studies', false);
  m.cacheLookup('studies', false);
  m.cacheLookup('studies', false);

  let s = parsePrometheus((await m.scrape()).body);
  expect(sampleValue(s, `${P}studies`, { source: 'pacs-a', state: 'synced' })).toBe(2);
  expect(sampleValue(s, `${P}studies`, { source: 'pacs-a', state: 'failing' })).toBe(1);
  expect(sampleValue(s, `${P}studies`, { source: 'pacs-a', state: 'dead' })).toBe(1);
  expect(sampleValue(s, `${P}dead_letters`, { source: 'pacs-a' })).toBe(1);
  expect(sampleValue(s, `${P}pacs_requests_total`, { source: 'pacs-a', kind: 'studies' })).toBe(4);
  expect(sampleValue(s, `${P}pacs_retries_total`, { source: 'pacs-a' })).toBe(3);
  expect(sampleValue(s, `${P}pacs_window_splits_total`, { source: 'pacs-a' })).toBe(1);
  expect(sampleValue(s, `${P}cache_hit_ratio`, { cache: 'api' })).toBeCloseTo(2 / 3);
  expect(sampleValue(s, `${P}cache_hits_total`, { cache: 'api' })).toBe(2);
  expect(sampleValue(s, `${P}cache_hit_ratio`, { cache: 'studies' })).toBeCloseTo(0.25);

  // The sources' totals move on, and the counters follow.
  stats.requests.studies = 9;
  await store.studies.replay('pacs-a');
  s = parsePrometheus((await m.scrape()).body);
  expect(sampleValue(s, `${P}pacs_requests_total`, { source: 'pacs-a', kind: 'studies' })).toBe(9);
  expect(sampleValue(s, `${P}dead_letters`, { source: 'pacs-a' })).toBe(0);
  expect(sampleValue(s, `${P}studies`, { source: 'pacs-a', state: 'failing' })).toBe(2);
});

test('typed request calls give counts and latency histograms by status', async () => {
  const m = createMetrics();
  m.qidoRequest('pacs-a', 'studies', 200, 0.02);
  m.qidoRequest('pacs-a', 'studies', 200, 0.2);
  m.qidoRequest('pacs-a', 'series', 503, 1.5);
  m.qidoRequest('pacs-a', 'studies', 0, 30);
  m.fhirRequest('fhir', 'transaction', 200, 0.3);
  m.fhirRequest('fhir', 'transaction', 429, 0.01);
  // The observers handed to the outbound clients (src/http/observe.ts) record into the same series.
  m.pacsRequests('pacs-b')('metadata', 200, 0.1);
  m.fhirRequests('fhir')('metadata', 0, 0.05);

  const s = parsePrometheus((await m.scrape()).body);
  const q = `${P}qido_request_duration_seconds`;
  expect(sampleValue(s, `${q}_count`, { source: 'pacs-a', level: 'studies', status: '200' })).toBe(2);
  expect(sampleValue(s, `${q}_sum`, { source: 'pacs-a', level: 'studies', status: '200' })).toBeCloseTo(0.22);
  expect(sampleValue(s, `${q}_bucket`, { source: 'pacs-a', level: 'studies', status: '200', le: '0.025' })).toBe(1);
  expect(sampleValue(s, `${q}_count`, { source: 'pacs-a', level: 'series', status: '503' })).toBe(1);
  expect(sampleValue(s, `${q}_count`, { source: 'pacs-a', level: 'studies', status: 'error' })).toBe(1);
  expect(
    sampleValue(s, `${P}fhir_request_duration_seconds_count`, {
      server: 'fhir',
      interaction: 'transaction',
      status: '429',
    }),
  ).toBe(1);
  expect(sampleValue(s, `${q}_count`, { source: 'pacs-b', level: 'metadata', status: '200' })).toBe(1);
  expect(
    sampleValue(s, `${P}fhir_request_duration_seconds_count`, {
      server: 'fhir',
      interaction: 'metadata',
      status: 'error',
    }),
  ).toBe(1);
  expect(sampleSum(s, `${P}fhir_request_duration_seconds_count`)).toBe(3);
});

test('lag per run follows the newest completed poll; failed runs let it grow', async () => {
  const at = (min: number) => new Date(Date.UTC(2024, 4, 1, 12, min)).toISOString();
  const run = (
    id: string,
    start: number,
    end: number,
    status: RunRecord['status'],
    kind: RunRecord['kind'] = 'poll',
  ): RunRecord => ({
    runId: id,
    sourceId: 's',
    kind,
    startedAt: at(start),
    endedAt: at(end),
    status,
    counts: { written: 1 },
    error: null,
  });
  const newestFirst = [
    run('d', 30, 31, 'ok'),
    run('c', 20, 21, 'failed'),
    run('b', 10, 12, 'interrupted'),
    run('bf', 5, 50, 'ok', 'backfill'),
    run('a', 0, 2, 'ok'),
  ];
  const points = lagPerRun(newestFirst);
  expect(points.map((p) => [p.runId, p.lagSeconds])).toEqual([
    ['a', 120],
    ['bf', 50 * 60],
    ['b', 12 * 60],
    ['c', 21 * 60],
    ['d', 60],
  ]);
  expect(syncLagSeconds(newestFirst, new Date(at(40)))).toBe(600);
  // A checkpoint still days behind caps the window end.
  expect(syncLagSeconds(newestFirst, new Date(at(40)), '20240429')).toBe(86400 + 12 * 3600 + 40 * 60);
  expect(syncLagSeconds([run('x', 0, 1, 'failed')], new Date(at(40)))).toBeUndefined();
});

test('coverage gauges: last complete sweep, its figures, pending age, freshness and a health flag per source', async () => {
  const m = createMetrics().observe({
    store,
    coverage: (id, now) => sourceCoverage(store, id, now, { maxAgeHours: 48, minCoverage: 0.999 }),
  });
  const started = new Date(Date.now() - 120_000);
  const sweep = await store.sweeps.open('pacs-a', started);
  const seen = new Date(Date.now() - 90_000);
  await store.studies.recordSynced('pacs-a', [
    { studyUid: '1.1', studyDate: '20240101', fingerprint: 'f', contentHash: 'h', seenAt: seen },
  ]);
  await store.studies.recordFailures('pacs-a', [
    { studyUid: '1.2', studyDate: '20240101', fingerprint: 'f', error: 'x', countAttempt: true, ...retry },
  ]);
  await store.sweeps.advance(sweep.id, { throughDate: '99991231', listed: 2, undatedDone: true });
  const done = await store.sweeps.complete(sweep.id, { vanished: 0, unresolved: 0 });
  await store.runs.finishRun(await store.runs.startRun('pacs-b', 'poll'), { status: 'ok', counts: {} }); // known, never swept

  const s = parsePrometheus((await m.scrape()).body);
  expect(sampleValue(s, `${P}sweep_last_complete_timestamp_seconds`, { source: 'pacs-a' })).toBe(
    Date.parse(done.completedAt!) / 1000,
  );
  expect(sampleValue(s, `${P}sweep_last_complete_timestamp_seconds`, { source: 'pacs-b' })).toBeUndefined();
  expect(sampleValue(s, `${P}sweep_studies`, { source: 'pacs-a', state: 'listed' })).toBe(2);
  expect(sampleValue(s, `${P}sweep_studies`, { source: 'pacs-a', state: 'synced' })).toBe(1);
  expect(sampleValue(s, `${P}sweep_studies`, { source: 'pacs-a', state: 'failing' })).toBe(1);
  expect(sampleValue(s, `${P}sweep_coverage_ratio`, { source: 'pacs-a' })).toBe(0.5);
  expect(sampleValue(s, `${P}pending_oldest_age_seconds`, { source: 'pacs-a' })).toBeGreaterThanOrEqual(0);
  // Written about 90 s after it was first seen.
  expect(sampleValue(s, `${P}freshness_seconds`, { source: 'pacs-a', quantile: '0.95' })).toBeGreaterThanOrEqual(89);
  expect(sampleValue(s, `${P}source_coverage_healthy`, { source: 'pacs-a', health: 'short' })).toBe(0);
  expect(sampleValue(s, `${P}source_coverage_healthy`, { source: 'pacs-b', health: 'never-swept' })).toBe(0);
});
