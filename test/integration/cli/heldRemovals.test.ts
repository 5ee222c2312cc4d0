/**
 * A held sweep as an operator and a scheduler see it: the real CLI as a child process, against a real Orthanc
 * behind a proxy that takes studies offline or answers junk rows. A sweep above reconcile.maxRemovals exits 3
 * and removes nothing; `status` (text and --json) names the hold; `sync --once --sweep --confirm-removals`
 * applies it; --confirm-removals without a sweep is a usage error; a listing of rows without Study Instance
 * UIDs exits 1 and removes nothing.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXIT } from '../../../src/cli/exitCodes';
import { openSqliteStore } from '../../../src/state';
import { generateCorpus, loadStudies } from '../../fixtures/synthetic';
import { startBridge } from '../../harness/bridgeCli';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { startQidoRewrite, type QidoRewrite } from '../../harness/qidoRewrite';

let tmp: string;
let orthanc: OrthancServer;
let pacs: QidoRewrite;
let held: string; // config: a limit of one removal
let unlimited: string; // the same source and store, no limit to speak of
let storePath: string;
const corpus = generateCorpus({ seed: 31, studies: 4, days: { from: '20230601', count: 2 }, undated: 0, maxSeries: 1 });
const uids = corpus.map((s) => s.studyUid);

function configDir(name: string, maxRemovals: { count: number; share: number }): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const config = {
    sources: [{ id: 'pacs', qidoBase: pacs.via(orthanc.dicomWebBase), defaultTimezone: 'Asia/Taipei', retries: 0 }],
    sync: {
      lookbackDays: 1,
      undatedSweep: false,
      sweep: { maxRequestsPerMinute: 100000 },
      reconcile: { deletion: 'entered-in-error', maxRemovals },
    },
    store: { path: storePath },
  };
  writeFileSync(path.join(dir, 'default.json'), JSON.stringify(config));
  writeFileSync(path.join(dir, 'production.json'), '{}');
  return dir;
}

const run = (dir: string, args: string[]) => startBridge(dir, args).done;
const summaries = (stdout: string) =>
  stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { kind: string; status: string; counts: Record<string, number>; error?: string });
const sweepOf = (stdout: string) => summaries(stdout).find((s) => s.kind === 'sweep')!;

/** What the store says, read between runs (the CLI has closed it). */
async function inStore() {
  const store = openSqliteStore(storePath);
  try {
    const removed = (await store.studies.list('pacs', 'removed')).map((s) => s.studyUid).sort();
    const withdrawn = (await store.resources.listImagingStudies()).filter((r) => r.status === 'entered-in-error');
    return { removed, withdrawn: withdrawn.length, held: (await store.sweeps.lastComplete('pacs'))?.held ?? null };
  } finally {
    store.close();
  }
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'cli-held-'));
  storePath = path.join(tmp, 'bridge.sqlite');
  orthanc = await startOrthanc();
  pacs = await startQidoRewrite(orthanc.dicomWebBase);
  await loadStudies(orthanc, corpus);
  held = configDir('held', { count: 1, share: 1 });
  unlimited = configDir('unlimited', { count: 1000, share: 1 });
}, 120_000);

afterAll(async () => {
  await pacs?.stop();
  await orthanc?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('a sweep above the limit exits 3 and removes nothing; status names the hold; --confirm-removals applies it', async () => {
  const first = await run(held, ['sync', '--once', '--sweep', '--json']);
  expect(first.code).toBe(EXIT.ok);
  expect(sweepOf(first.stdout)).toMatchObject({ status: 'ok' });

  pacs.hidden.add(uids[0]!).add(uids[1]!);
  const heldRun = await run(held, ['sync', '--once', '--sweep', '--json']);
  expect(heldRun.code).toBe(EXIT.partial);
  expect(sweepOf(heldRun.stdout).counts).toMatchObject({ vanished: 2, held: 2 });
  expect(await inStore()).toEqual({
    removed: [],
    withdrawn: 0,
    held: { removals: 2, of: 4, limit: 1, confirmedAt: null },
  });

  const json = await run(held, ['status', '--json']);
  expect(json.code).toBe(EXIT.unhealthy);
  const [status] = JSON.parse(json.stdout) as { coverage: { health: string; lastSweep: { held: unknown } } }[];
  expect(status!.coverage).toMatchObject({ health: 'held', lastSweep: { held: { removals: 2, of: 4, limit: 1 } } });
  const text = await run(held, ['status']);
  expect(text.code).toBe(EXIT.unhealthy);
  expect(text.stdout).toContain('verdict: UNHEALTHY: removals held');
  expect(text.stdout).toMatch(/coverage: HELD: removals held: the last sweep would remove 2 of 4 studies/);
  expect(text.stdout).toContain('sync --once --sweep --confirm-removals');

  // Confirming is for a sweep to apply: without one it is refused and nothing is recorded.
  const usage = await run(held, ['sync', '--once', '--confirm-removals']);
  expect(usage.code).toBe(EXIT.usage);
  expect(usage.stderr).toContain('use it with --once --sweep');
  expect((await inStore()).held?.confirmedAt).toBeNull();

  const confirmed = await run(held, ['sync', '--once', '--sweep', '--confirm-removals', '--json']);
  expect(confirmed.code).toBe(EXIT.ok);
  expect(confirmed.stderr).toContain('pacs: confirmed the held removals (2 of 4 studies)');
  expect(sweepOf(confirmed.stdout)).toMatchObject({ status: 'ok', counts: { vanished: 2, removed: 2 } });
  expect(await inStore()).toEqual({ removed: [uids[0], uids[1]].sort(), withdrawn: 2, held: null });
  const after = JSON.parse((await run(held, ['status', '--json'])).stdout) as { coverage: { health: string } }[];
  expect(after[0]!.coverage.health).not.toBe('held');
}, 180_000);

test('1: a listing of rows without Study Instance UIDs fails the run and removes nothing, whatever the limit', async () => {
  const before = await inStore();
  // As the tester saw it: the look-ups by UID that would confirm a vanished study get the same junk.
  pacs.junk = 'all';
  try {
    const r = await run(unlimited, ['sync', '--once', '--sweep', '--json']);
    expect(r.code).toBe(EXIT.failed);
    expect(sweepOf(r.stdout)).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/row 1 of \d+ has no StudyInstanceUID \(0020,000D\); the answer is malformed/),
    });
  } finally {
    pacs.junk = 'none';
  }
  expect(await inStore()).toEqual(before);
}, 120_000);
