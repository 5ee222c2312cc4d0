/**
 * Crash safety: the bridge runs as a child process (the real CLI, configuration through the `config`
 * package), is killed with SIGKILL in the middle of a backfill, and is started again. The store must
 * end complete, with exactly one ImagingStudy per study.
 */
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { EXIT } from '../../../src/cli/exitCodes';
import { imagingStudyId } from '../../../src/mapping';
import { openSqliteStore } from '../../../src/state';
import { generateCorpus, loadStudies, type SyntheticStudy } from '../../fixtures/synthetic';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { startRecordingProxy, type RecordingProxy } from '../../harness/recordingProxy';
import { startBridge } from '../../harness/bridgeCli';
import { SOURCE_ID, TZ } from './common';

let orthanc: OrthancServer;
let proxy: RecordingProxy;
let dir: string;
let dbFile: string;
let corpus: SyntheticStudy[];

const bridge = (args: string[]) => startBridge(dir, args);

/** A count from the store, read from outside the bridge (WAL lets a reader in while it writes). */
function countInStore(table: 'resources' | 'studies', sql: string): number {
  if (!existsSync(dbFile)) return 0;
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const hasTable = db.prepare(`SELECT 1 FROM sqlite_master WHERE name = ?`).get(table);
    return hasTable ? (db.prepare(sql).get() as { n: number }).n : 0;
  } finally {
    db.close();
  }
}
const storedResourceCount = () =>
  countInStore('resources', `SELECT COUNT(*) AS n FROM resources WHERE resource_type = 'ImagingStudy'`);
const syncedStudyCount = () => countInStore('studies', `SELECT COUNT(*) AS n FROM studies WHERE status = 'synced'`);

beforeAll(async () => {
  orthanc = await startOrthanc();
  proxy = await startRecordingProxy(orthanc.dicomWebBase);
  corpus = generateCorpus({
    seed: 7,
    studies: 40,
    days: { from: '20230101', count: 10 },
    undated: 0,
    maxSeries: 2,
    maxInstances: 2,
  });
  await loadStudies(orthanc, corpus);
  dir = mkdtempSync(path.join(os.tmpdir(), 'sync-crash-'));
  dbFile = path.join(dir, 'data', 'bridge.sqlite');
  const config = {
    sources: [
      {
        id: SOURCE_ID,
        qidoBase: proxy.via(orthanc.dicomWebBase),
        defaultTimezone: TZ,
        retries: 0,
        // The hospital's own system: on the built-in one start-up warns (cli/statusExit tests it); this run must not.
        mapping: { patient: { defaultSystem: 'urn:oid:2.16.886.101.20003.20014' } },
      },
    ],
    sync: { windowDays: 1, batchSize: 2 },
    store: { path: dbFile },
  };
  writeFileSync(path.join(dir, 'default.json'), JSON.stringify(config));
  writeFileSync(path.join(dir, 'production.json'), '{}');
}, 120000);

afterAll(async () => {
  await proxy?.stop();
  await orthanc?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function waitForResources(n: number): Promise<number> {
  const deadline = Date.now() + 90000;
  let count: number;
  while ((count = storedResourceCount()) < n) {
    if (Date.now() > deadline) throw new Error(`backfill made no progress (${count} resources)`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return count;
}

it('SIGTERM mid-backfill stops gracefully; kill -9 later, then a restart: the store ends complete, with one resource per study', async () => {
  proxy.delayMs = 60;
  const graceful = bridge(['backfill', '--from', '2023-01-01', '--to', '2023-01-10']);
  await waitForResources(2);
  graceful.child.kill('SIGTERM');
  const stopped = await graceful.done;
  // Interrupted (130), with the way to resume on stderr.
  expect(stopped.code).toBe(130);
  expect(stopped.stdout).toMatch(/backfill interrupted/);
  expect(stopped.stderr).toMatch(/interrupted by SIGTERM.*Run the same command again to resume/);
  const afterTerm = storedResourceCount();
  expect(afterTerm).toBeLessThan(corpus.length);
  // The batch in hand was finished and recorded: every stored resource has its study state.
  expect(syncedStudyCount()).toBe(afterTerm);

  const first = bridge(['backfill', '--from', '2023-01-01', '--to', '2023-01-10']);
  await waitForResources(afterTerm + 6);
  first.child.kill('SIGKILL');
  const killed = await first.done;
  expect(killed.signal).toBe('SIGKILL');
  const atKill = storedResourceCount();
  expect(atKill).toBeLessThan(corpus.length);

  proxy.delayMs = 0;
  proxy.reset();
  const second = await bridge(['backfill', '--from', '20230101', '--to', '20230110', '--json']).done;
  expect(second.code).toBe(0);
  // Nothing went wrong: the log (JSON lines on stderr) holds no warning or error.
  const logLines = second.stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { level: number; msg: string });
  expect(logLines.filter((l) => l.level >= 40)).toEqual([]);
  // --json: stdout is the run summary, one JSON line, with the QIDO requests it made; logs go to stderr.
  const summary = second.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const made = proxy.counts();
  expect(summary).toEqual([
    expect.objectContaining({
      sourceId: SOURCE_ID,
      kind: 'backfill',
      status: 'ok',
      counts: expect.objectContaining({ qidoRequests: made.studies + made.series + made.instances }),
    }),
  ]);
  expect(Date.parse(summary[0].endedAt)).toBeGreaterThanOrEqual(Date.parse(summary[0].startedAt));
  // Plain progress lines (no terminal): JSON log lines on stderr with the source and run id.
  const progress = second.stderr
    .split('\n')
    .filter((l) => l.includes('backfill progress'))
    .map((l) => JSON.parse(l));
  expect(progress.length).toBeGreaterThan(0);
  expect(progress[0]).toMatchObject({ source: SOURCE_ID, runId: expect.any(String), windowsTotal: 10 });

  const store = openSqliteStore(dbFile);
  try {
    const studies = await store.resources.listImagingStudies({ sourceId: SOURCE_ID });
    expect(studies).toHaveLength(corpus.length);
    expect(new Set(studies.map((s) => s.id)).size).toBe(corpus.length);
    for (const s of corpus) {
      expect(await store.resources.get('ImagingStudy', imagingStudyId(s.studyUid))).toBeDefined();
      expect((await store.studies.get(SOURCE_ID, s.studyUid))?.status).toBe('synced');
    }
    // Every stored study is one of the corpus: nothing written twice under another id.
    expect(studies.map((s) => s.id).sort()).toEqual(corpus.map((s) => imagingStudyId(s.studyUid)).sort());
    const [resumed, killedRun, terminated] = await store.runs.listRuns(SOURCE_ID, 3);
    // The killed run was left 'running' and is closed as interrupted when the bridge starts again.
    expect(killedRun).toMatchObject({ kind: 'backfill', status: 'interrupted' });
    expect(terminated).toMatchObject({ kind: 'backfill', status: 'interrupted', endedAt: expect.any(String) });
    expect(resumed).toMatchObject({ kind: 'backfill', status: 'ok' });
    // The restart resumed: studies already synced before the kill were not fetched again.
    expect(resumed.counts.fetched).toBeLessThan(corpus.length);
    expect(resumed.counts.windows).toBeLessThanOrEqual(10);
  } finally {
    await store.close();
  }

  const status = await bridge(['status', '--json']).done;
  // Backfilled, never swept: unproven coverage is the one thing `status` flags (its own exit status).
  expect(status.code).toBe(EXIT.unhealthy);
  const [st] = JSON.parse(status.stdout);
  expect(st).toMatchObject({
    verdict: { healthy: false, reasons: [{ code: 'coverage-never-swept' }] },
    sourceId: SOURCE_ID,
    counts: { synced: corpus.length, failing: 0, dead: 0 },
    lastRun: { kind: 'backfill', status: 'ok' },
  });
});
