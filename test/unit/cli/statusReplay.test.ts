/**
 * The `status` and `replay` subcommands in-process, over a store prepared by hand; configuration
 * comes through loadConfig() and the `config` package, as in production.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../../../src/state';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sync-cli-'));
const dbFile = path.join(dir, 'bridge.sqlite');
writeFileSync(
  path.join(dir, 'default.json'),
  JSON.stringify({
    sources: [{ id: 'pacs-a', qidoBase: 'http://127.0.0.1:9/dicom-web' }],
    sync: { maxAttempts: 2 },
    store: { path: dbFile },
  }),
);
// The `config` package warns when no file matches NODE_ENV (jest sets "test").
writeFileSync(path.join(dir, `${process.env.NODE_ENV ?? 'development'}.json`), '{}');
process.env.NODE_CONFIG_DIR = dir;
process.env.SUPPRESS_NO_CONFIG_WARNING = '1';
// eslint-disable-next-line @typescript-eslint/no-require-imports -- after NODE_CONFIG_DIR is set above
const { replayCommand, statusCommand } = require('../../../src/cli/sync') as typeof import('../../../src/cli/sync');

let out: string;
let err: string;
beforeEach(async () => {
  out = '';
  err = '';
  jest.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  jest.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  process.exitCode = undefined;
});
afterEach(async () => {
  jest.restoreAllMocks();
  process.exitCode = undefined;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('status shows last run, checkpoint, counts, failing and dead letters; replay re-queues them', async () => {
  const store = openSqliteStore(dbFile);
  const fail = {
    studyDate: '20240101',
    fingerprint: 'f',
    error: 'HTTP 500 from PACS',
    countAttempt: true,
    maxAttempts: 2,
    retryDelaySeconds: () => 60,
  };
  await store.studies.recordFailures('pacs-a', [{ studyUid: '1.2.1', ...fail }]);
  await store.studies.recordFailures('pacs-a', [{ studyUid: '1.2.1', ...fail }]);
  await store.studies.recordFailures('pacs-a', [{ studyUid: '1.2.2', ...fail }]);
  await store.studies.recordSynced('pacs-a', [
    { studyUid: '1.2.3', studyDate: '20240101', fingerprint: 'f', contentHash: 'h' },
  ]);
  await store.checkpoints.advance('pacs-a', '20240105');
  await store.runs.finishRun(await store.runs.startRun('pacs-a', 'poll'), {
    status: 'partial',
    counts: { written: 1, failed: 2 },
  });
  await store.close();

  await statusCommand().parseAsync(['--json'], { from: 'user' });
  const [status] = JSON.parse(out);
  expect(status).toMatchObject({
    sourceId: 'pacs-a',
    checkpoint: '20240105',
    lastRun: { kind: 'poll', status: 'partial', counts: { written: 1, failed: 2 } },
    counts: { studies: 3, synced: 1, failing: 1, dead: 1 },
    failing: [{ studyUid: '1.2.2', attempts: 1 }],
    dead: [{ studyUid: '1.2.1', attempts: 2, lastError: 'HTTP 500 from PACS' }],
  });
  expect(status.lagDays).toBeGreaterThan(0);

  out = '';
  await statusCommand().parseAsync([], { from: 'user' });
  expect(out).toMatch(/dead {4}1\.2\.1 attempts=2: HTTP 500 from PACS/);

  out = '';
  await replayCommand().parseAsync(['--study', '9.9.9'], { from: 'user' });
  expect(process.exitCode).toBe(1);
  expect(err).toMatch(/no dead letter with StudyInstanceUID 9\.9\.9/);

  process.exitCode = undefined;
  out = '';
  await replayCommand().parseAsync([], { from: 'user' });
  expect(out).toBe('pacs-a: 1 dead letter re-queued\n');
  const after = openSqliteStore(dbFile);
  expect(await after.studies.get('pacs-a', '1.2.1')).toMatchObject({
    status: 'failing',
    attempts: 0,
    nextRetryAt: null,
  });
  after.close();
});

it('reports a bad sync section as a configuration error naming the key', async () => {
  writeFileSync(path.join(dir, 'local.json'), JSON.stringify({ sync: { lookbackDays: -1 } }));
  jest.resetModules();
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh module registry reads the new file
  const fresh = require('../../../src/cli/sync') as typeof import('../../../src/cli/sync');
  await expect(fresh.statusCommand().parseAsync([], { from: 'user' })).rejects.toThrow(/sync\.lookbackDays/);
});

it("status shows coverage: a never-swept source says so; the last sweep's figures; an old sweep is overdue", async () => {
  jest.resetModules();
  rmSync(path.join(dir, 'local.json'), { force: true });
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh module registry reads the new file
  const cli = require('../../../src/cli/sync') as typeof import('../../../src/cli/sync');
  await cli.statusCommand().parseAsync([], { from: 'user' });
  expect(out).toMatch(/coverage: NEVER-SWEPT: no full-range sweep has completed yet/);
  expect(out).toMatch(/never swept: no full-range sweep has completed/);

  const store = openSqliteStore(dbFile);
  const threeDaysAgo = new Date(Date.now() - 3 * 86_400_000);
  const sweep = await store.sweeps.open('pacs-a', threeDaysAgo);
  await store.studies.recordSynced('pacs-a', [
    { studyUid: '1.2.4', studyDate: '20240102', fingerprint: 'f', contentHash: 'h' },
  ]);
  await store.sweeps.advance(sweep.id, { throughDate: '99991231', listed: 4, undatedDone: true });
  await store.sweeps.complete(sweep.id, { vanished: 0, unresolved: 0, at: threeDaysAgo });
  await store.close();

  out = '';
  await cli.statusCommand().parseAsync(['--json'], { from: 'user' });
  const [status] = JSON.parse(out);
  // 1.2.1 (replayed above) and 1.2.2 are failing: 2 of the 4 listed are synced.
  expect(status.coverage).toMatchObject({
    health: 'overdue',
    lastSweep: { listed: 4, synced: 2, failing: 2, dead: 0 },
    pending: { failing: 2, dead: 0, oldestStudyUid: expect.any(String) },
  });
  out = '';
  await cli.statusCommand().parseAsync([], { from: 'user' });
  expect(out).toMatch(
    /coverage: OVERDUE: last complete sweep is 72 h old \(limit 48 h\); 2 of 4 studies the PACS reported are synced/,
  );
  expect(out).toMatch(/PACS reported 4, synced 2 \(50\.0 %\), failing 2, dead 0, vanished 0/);
  expect(out).toMatch(/pending 2 failing, 0 dead; oldest 1\.2\.\d waiting/);
});
