/**
 * The `status` and `replay` subcommands in-process, over a store prepared by hand; configuration
 * comes through loadConfig() and the `config` package, as in production.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../../../src/sinks/store';

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
beforeEach(() => {
  out = '';
  err = '';
  jest.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  jest.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  process.exitCode = undefined;
});
afterEach(() => {
  jest.restoreAllMocks();
  process.exitCode = undefined;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('status shows last run, checkpoint, counts, failing and dead letters; replay re-queues them', async () => {
  const store = openStore(dbFile);
  const fail = {
    studyDate: '20240101',
    fingerprint: 'f',
    error: 'HTTP 500 from PACS',
    countAttempt: true,
    maxAttempts: 2,
    retryDelaySeconds: () => 60,
  };
  store.recordFailure('pacs-a', '1.2.1', fail);
  store.recordFailure('pacs-a', '1.2.1', fail);
  store.recordFailure('pacs-a', '1.2.2', fail);
  store.recordSynced('pacs-a', '1.2.3', { studyDate: '20240101', fingerprint: 'f', contentHash: 'h' });
  store.advanceCheckpoint('pacs-a', '20240105');
  store.finishRun(store.startRun('pacs-a', 'poll'), { status: 'partial', counts: { written: 1, failed: 2 } });
  store.close();

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
  const after = openStore(dbFile);
  expect(after.getStudy('pacs-a', '1.2.1')).toMatchObject({ status: 'failing', attempts: 0, nextRetryAt: null });
  after.close();
});

it('reports a bad sync section as a configuration error naming the key', async () => {
  writeFileSync(path.join(dir, 'local.json'), JSON.stringify({ sync: { lookbackDays: -1 } }));
  jest.resetModules();
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh module registry reads the new file
  const fresh = require('../../../src/cli/sync') as typeof import('../../../src/cli/sync');
  await expect(fresh.statusCommand().parseAsync([], { from: 'user' })).rejects.toThrow(/sync\.lookbackDays/);
});
