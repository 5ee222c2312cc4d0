/**
 * The executable as a scheduler sees it: the real CLI run as a child process (configuration through the
 * `config` package), against a real Orthanc, checked for the exit status of each row of the table, for
 * stdout that holds only JSON lines with --json (logs on stderr), for --version, a closed pipe, an
 * unknown --source, and connection errors that name the URL but never the credentials.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXIT } from '../../../src/cli/exitCodes';
import { generateCorpus, loadStudies, makeSeries, makeStudy, type SyntheticStudy } from '../../fixtures/synthetic';
import { freePort, startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { startRecordingProxy, type RecordingProxy } from '../../harness/recordingProxy';
import { startBridge } from '../../harness/bridgeCli';

const ROOT = path.resolve(__dirname, '../../..');

let tmp: string;
let orthanc: OrthancServer;
let proxy: RecordingProxy;
let orthancConfig: string;
let dated: SyntheticStudy[];
let odd: SyntheticStudy[];

/** A config folder holding `config` as default.json (and an empty production.json, so `config` does not warn). */
function configDir(name: string, config: unknown): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'default.json'), JSON.stringify(config));
  writeFileSync(path.join(dir, 'production.json'), '{}');
  return dir;
}

const bridge = (dir: string, args: string[]) => startBridge(dir, args);
const run = (dir: string, args: string[]) => bridge(dir, args).done;

/** Every non-empty line parsed as JSON (throws on the first line that is not). */
const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, any>);

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'cli-exit-'));
  orthanc = await startOrthanc();
  proxy = await startRecordingProxy(orthanc.dicomWebBase);
  dated = generateCorpus({ seed: 12, studies: 4, days: { from: '20230301', count: 2 }, undated: 0, maxSeries: 1 });
  odd = [
    // A series without Modality fails its study with the default mapping (series-missing-modality).
    makeStudy({ studyDate: '20230401', series: [makeSeries({ modality: undefined, instances: 1 })] }),
    makeStudy({ studyDate: '20230401' }),
    makeStudy({ studyDate: undefined, studyTime: undefined }),
  ];
  await loadStudies(orthanc, [...dated, ...odd]);
  orthancConfig = configDir('orthanc', {
    sources: [{ id: 'orthanc', qidoBase: proxy.via(orthanc.dicomWebBase), defaultTimezone: 'Asia/Taipei', retries: 0 }],
    sync: { windowDays: 1 },
    store: { path: path.join(tmp, 'orthanc.sqlite') },
  });
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  await orthanc?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('--version prints the version of package.json; --help carries the exit status table', async () => {
  const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const v = await run(orthancConfig, ['--version']);
  expect(v).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' });
  const help = await run(orthancConfig, ['backfill', '--help']);
  expect(help.code).toBe(0);
  expect(help.stdout).toMatch(/Exit status:\n {2}0 {4}everything asked for was done/);
  expect(help.stdout).toMatch(/^ {2}130 {2}interrupted/m);
});

test('0: a run that did everything; with --json stdout is JSON lines only and the logs (info) are on stderr', async () => {
  const r = await run(orthancConfig, ['backfill', '--from', '2023-03-01', '--to', '2023-03-02', '--json']);
  expect(r.code).toBe(EXIT.ok);
  expect(jsonLines(r.stdout)).toEqual([
    expect.objectContaining({ sourceId: 'orthanc', kind: 'backfill', status: 'ok', counts: expect.any(Object) }),
  ]);
  expect(jsonLines(r.stdout)[0].counts.written).toBe(dated.length);
  const logs = jsonLines(r.stderr);
  expect(logs.map((l) => l.msg)).toEqual(expect.arrayContaining(['run started', 'backfill progress', 'run finished']));
  expect(logs.every((l) => l.level >= 30)).toBe(true);
});

test('discover --json: one JSON line per study, each study once; the summary goes to stderr and adds up', async () => {
  const r = await run(orthancConfig, ['discover', '--json']);
  expect(r.code).toBe(0);
  const rows = jsonLines(r.stdout);
  const all = [...dated, ...odd];
  expect(rows.map((row) => row.studyUid).sort()).toEqual(all.map((s) => s.studyUid).sort());
  const undated = rows.filter((row) => !row.dated);
  expect(undated.map((row) => row.studyUid)).toEqual(expect.arrayContaining([odd[2].studyUid]));
  expect(r.stderr).toContain(`orthanc: ${all.length} studies — ${all.length - undated.length} dated (19000101–`);
  expect(r.stderr).toContain(`, ${undated.length} undated;`);

  const human = await run(orthancConfig, ['discover']);
  expect(human.code).toBe(0);
  for (const s of all) expect(human.stdout.split(s.studyUid)).toHaveLength(2);
});

test('3: a partial run (one study of two cannot be mapped)', async () => {
  const r = await run(orthancConfig, ['backfill', '--from', '20230401', '--to', '20230401', '--json']);
  expect(r.code).toBe(EXIT.partial);
  expect(jsonLines(r.stdout)).toEqual([
    expect.objectContaining({ status: 'partial', counts: expect.objectContaining({ written: 1, failed: 1 }) }),
  ]);
});

test('130: SIGINT during a backfill stops after the batch in hand and says how to resume', async () => {
  proxy.delayMs = 150;
  try {
    const b = bridge(orthancConfig, ['backfill', '--from', '2023-01-01', '--to', '2023-03-02']);
    // Interrupt once the backfill is under way (its first progress line).
    await new Promise<void>((resolve) => {
      let seen = '';
      b.child.stderr!.on('data', (d) => {
        seen += d;
        if (seen.includes('backfill progress')) resolve();
      });
    });
    b.child.kill('SIGINT');
    const r = await b.done;
    expect(r.code).toBe(EXIT.interrupted);
    expect(r.stdout).toMatch(/^orthanc: backfill interrupted /);
    expect(r.stderr).toMatch(/interrupted by SIGINT; .*Run the same command again to resume/);
  } finally {
    proxy.delayMs = 0;
  }
});

test('78: misspelt keys and a bad URL in the configuration, every problem listed', async () => {
  const dir = configDir('typos', {
    sources: [{ id: 'pacs', qidoBase: 'htp:/x', publicWadoBse: 'https://pacs.example/wado', defaultTimeZone: 'UTC' }],
    sync: { lookbakDays: 3 },
  });
  const r = await run(dir, ['sync', '--once']);
  expect(r.code).toBe(EXIT.config);
  expect(r.stdout).toBe('');
  expect(r.stderr).toContain('Invalid configuration (4 problems)');
  for (const p of [
    'sources.0.qidoBase: "htp:/x" is not an http(s) URL with a host',
    'sources.0.publicWadoBse: unknown key',
    'sources.0.defaultTimeZone: unknown key',
    'sync.lookbakDays: unknown key',
  ])
    expect(r.stderr).toContain(p);
});

describe('a PACS that cannot be reached', () => {
  let dir: string;
  let url: string;
  beforeAll(async () => {
    const port = await freePort(); // nothing listens there
    url = `http://127.0.0.1:${port}/dicom-web`;
    dir = configDir('unreachable', {
      sources: [
        {
          id: 'down',
          qidoBase: `http://bridge:s3cret-in-url@127.0.0.1:${port}/dicom-web`,
          auth: { type: 'basic', username: 'bridge', password: 'hunter2-password' },
          retries: 0,
        },
        { id: 'other', qidoBase: url },
      ],
      store: { path: path.join(tmp, 'unreachable.sqlite') },
    });
  });

  test('1: the run failed; the error names the URL tried, never the credentials', async () => {
    const r = await run(dir, ['sync', '--once', '--source', 'down', '--json']);
    expect(r.code).toBe(EXIT.failed);
    const [summary] = jsonLines(r.stdout);
    expect(summary).toMatchObject({ sourceId: 'down', status: 'failed' });
    expect(summary.error).toContain('ECONNREFUSED');
    expect(summary.error).toContain(`(${url}/studies)`);
    for (const out of [r.stdout, r.stderr]) expect(out).not.toMatch(/s3cret|hunter2/);
    expect(jsonLines(r.stderr).some((l) => l.msg === 'run ended early: PACS unavailable')).toBe(true);
  });

  test('2: an unknown --source lists the configured ids', async () => {
    const r = await run(dir, ['status', '--source', 'nosuch']);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toContain('no source with id "nosuch" (configured: down, other)');
    expect(r.stdout).toBe('');
  });

  test('a closed pipe (a reader that stopped early) ends the process quietly', async () => {
    const b = bridge(dir, ['status']);
    b.child.stdout!.destroy(); // the reader is gone before the bridge writes a line
    const r = await b.done;
    expect(r.code).toBe(EXIT.closedPipe);
    expect(r.stderr).toBe('');
  });
});
