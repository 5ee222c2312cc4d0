/**
 * A study the PACS will not list in full, as operators see it: behind a strictly conforming responder that
 * ignores `offset` on instance searches (every page is the first again), the CLI's `sync --once` and
 * `backfill` end partial (exit 3), the study is recorded failing with the reason `truncated-by-pacs` and
 * retried, never written; once out of attempts it is a dead letter that still says why; `status`, the
 * coverage verdict and /metrics name the reason. The other study of the day is written.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXIT } from '../../../src/cli/exitCodes';
import { createMetrics } from '../../../src/metrics';
import { openSqliteStore } from '../../../src/state';
import { loadStudies, makeSeries, makeStudy } from '../../fixtures/synthetic';
import { startBridge } from '../../harness/bridgeCli';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { startStrictQido, type StrictQido } from '../../harness/strictQido';
import { parsePrometheus, sampleValue } from '../metrics/promText';
import { daysAgo } from '../sync/common';

const TODAY = daysAgo(0);
const P = 'pacs_fhir_bridge_';

let tmp: string;
let orthanc: OrthancServer;
let strict: StrictQido;
let configDir: string;
let storePath: string;
// 25 instances in pages of 10: the second page asks for offset 10 and gets the first ten again.
const large = makeStudy({ studyDate: TODAY, series: [makeSeries({ instances: 25 })] });
const small = makeStudy({ studyDate: TODAY, series: [makeSeries({ instances: 2 })] });

const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{') || l.startsWith('['))
    .map((l) => JSON.parse(l) as Record<string, any>);

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'cli-truncated-'));
  orthanc = await startOrthanc();
  strict = await startStrictQido(orthanc, { ignoreOffset: ['instance'] });
  await loadStudies(orthanc, [large, small]);
  configDir = path.join(tmp, 'config');
  storePath = path.join(tmp, 'store.sqlite');
  mkdirSync(configDir);
  const config = {
    sources: [
      {
        id: 'pacs',
        qidoBase: strict.dicomWebBase,
        defaultTimezone: 'Asia/Taipei',
        retries: 0,
        detailPageSize: 10,
      },
    ],
    // Retried at once, and dead-lettered at the second failure.
    sync: { lookbackDays: 0, maxAttempts: 2, backoffBaseSeconds: 0 },
    store: { path: storePath },
  };
  writeFileSync(path.join(configDir, 'default.json'), JSON.stringify(config));
  writeFileSync(path.join(configDir, 'production.json'), '{}');
}, 60_000);

afterAll(async () => {
  await strict?.stop();
  await orthanc?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('sync --once and backfill exit 3; the study fails with truncated-by-pacs, then is a dead letter saying why', async () => {
  const once = await startBridge(configDir, ['sync', '--once', '--json']).done;
  expect(once.code).toBe(EXIT.partial);
  expect(jsonLines(once.stdout)).toEqual([
    expect.objectContaining({ status: 'partial', counts: expect.objectContaining({ written: 1, failed: 1 }) }),
  ]);
  // The responder was asked for the next offset and answered the first page again.
  expect(strict.searches.some((q) => /instances\?.*offset=10/.test(q))).toBe(true);
  expect(strict.searches.some((q) => q.includes(`/series/${large.series[0]!.seriesUid}/instances`))).toBe(true);

  let store = openSqliteStore(storePath);
  try {
    const state = (await store.studies.get('pacs', large.studyUid))!;
    expect(state).toMatchObject({ status: 'failing', reason: 'truncated-by-pacs', attempts: 1, resourceId: null });
    expect(state.lastError).toMatch(/^truncated-by-pacs: .*instances search .*\(10 of 25 instances listed\)/);
    expect(await store.studies.get('pacs', small.studyUid)).toMatchObject({ status: 'synced', reason: null });
    const stored = (await store.resources.listImagingStudies()).map((r) => r.id);
    expect(stored).toHaveLength(1);
  } finally {
    store.close();
  }

  const backfill = await startBridge(configDir, ['backfill', '--from', TODAY, '--to', TODAY, '--json']).done;
  expect(backfill.code).toBe(EXIT.partial);
  expect(jsonLines(backfill.stdout)).toEqual([
    expect.objectContaining({ status: 'partial', counts: expect.objectContaining({ failed: 1, dead: 1 }) }),
  ]);

  const status = await startBridge(configDir, ['status', '--json']).done;
  expect(status.code).toBe(EXIT.unhealthy); // a dead letter, and coverage short
  const [s] = jsonLines(status.stdout)[0] as unknown as Record<string, any>[];
  expect(s!.dead).toEqual([
    { studyUid: large.studyUid, attempts: 2, lastError: expect.stringMatching(/^truncated-by-pacs: /) },
  ]);
  expect(s!.coverage.pending).toMatchObject({ truncatedByPacs: 1, truncatedExample: large.studyUid });
  expect(s!.coverage.health).not.toBe('ok');
  expect(s!.coverage.problems).toEqual(
    expect.arrayContaining([expect.stringMatching(new RegExp(`truncated-by-pacs, e\\.g\\. ${large.studyUid}`))]),
  );
  const human = await startBridge(configDir, ['status']).done;
  expect(human.stdout).toMatch(new RegExp(`dead {4}${large.studyUid} attempts=2: truncated-by-pacs: `));

  store = openSqliteStore(storePath);
  try {
    const samples = parsePrometheus((await createMetrics().observe({ store }).scrape()).body);
    const failing = (state: string, reason: string) =>
      sampleValue(samples, `${P}failing_studies`, { source: 'pacs', state, reason });
    expect(failing('dead', 'truncated-by-pacs')).toBe(1);
    expect(failing('failing', 'truncated-by-pacs')).toBe(0);
    expect(failing('dead', 'other')).toBeUndefined();
  } finally {
    store.close();
  }
}, 120_000);
