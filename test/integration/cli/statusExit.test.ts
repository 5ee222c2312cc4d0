/**
 * `status` for monitoring: exit 0 when every source is healthy, EXIT.unhealthy (4) when any source's coverage is
 * short, overdue or never swept, or when it has dead-lettered or quarantined studies; `--json` carries each
 * source's verdict and reasons. The CLI runs as a child process over a store prepared here; the coverage reasons
 * are also checked in-process through the same sourceStatus → sourceVerdict path with a moved clock.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXIT } from '../../../src/cli/exitCodes';
import { sourceStatus } from '../../../src/cli/sync';
import { sourceVerdict } from '../../../src/cli/verdict';
import { parseConfig, type BridgeConfig } from '../../../src/config';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { studyFailure, syncedStudy } from '../../fixtures/stateRecords';
import { startBridge } from '../../harness/bridgeCli';

const SOURCES = ['healthy', 'dead', 'quarantined', 'never', 'short'];
const T0 = new Date(Date.now() - 3600_000);
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

let tmp: string;
let configDir: string;
let store: SqliteStateStore;
let config: BridgeConfig;

const synced = (studyUid: string, seconds: number) => syncedStudy(studyUid, at(seconds), { studyDate: '20240101' });

const failure = (studyUid: string, maxAttempts: number, seconds: number) =>
  studyFailure(studyUid, at(seconds), {
    studyDate: '20240101',
    error: 'mapping: boom',
    maxAttempts,
    retryDelaySeconds: () => 60,
  });

/** A complete sweep of `sourceId` that saw `uids` (synced), and whatever `during` records before it completes. */
async function swept(sourceId: string, uids: string[], during?: () => Promise<unknown>): Promise<void> {
  const sweep = await store.sweeps.open(sourceId, at(0));
  await store.studies.recordSynced(
    sourceId,
    uids.map((u) => synced(u, 1)),
  );
  await during?.();
  await store.sweeps.complete(sweep.id, { vanished: 0, unresolved: 0, at: at(2) });
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'status-exit-'));
  const storePath = path.join(tmp, 'bridge.sqlite');
  const raw = {
    sources: SOURCES.map((id) => ({ id, qidoBase: 'http://127.0.0.1:9/dicom-web', defaultTimezone: 'Asia/Taipei' })),
    store: { path: storePath },
  };
  config = parseConfig(raw);
  configDir = path.join(tmp, 'config');
  mkdirSync(configDir);
  writeFileSync(path.join(configDir, 'default.json'), JSON.stringify(raw));
  writeFileSync(path.join(configDir, 'production.json'), '{}');

  store = openSqliteStore(storePath);
  await swept('healthy', ['1.1', '1.2']);
  await swept('dead', ['2.1']);
  await store.studies.recordFailures('dead', [failure('2.2', 1, 3)]); // dead at once, after the sweep
  await swept('quarantined', ['3.1']);
  await store.studies.recordQuarantine('quarantined', '3.2', {
    studyDate: null,
    fingerprint: null,
    reason: 'study-uid-conflict',
    detail: 'listed under 2 patients',
    at: at(3),
  });
  // Seen in the sweep but failing: 1 of 2 synced, under the default minimum coverage.
  await swept('short', ['5.1'], () => store.studies.recordFailures('short', [failure('5.2', 5, 1)]));
}, 30_000);

afterAll(() => {
  store?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const status = (args: string[]) => startBridge(configDir, ['status', ...args]).done;

describe('status exit codes', () => {
  it('0 when every source asked about is healthy; --json says healthy with no reasons', async () => {
    const r = await status(['--source', 'healthy', '--json']);
    expect(r.code).toBe(EXIT.ok);
    const [s] = JSON.parse(r.stdout);
    expect(s).toMatchObject({ sourceId: 'healthy', verdict: { healthy: true, reasons: [] } });
  });

  it('--help lists exit status 4', async () => {
    const r = await status(['--help']);
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/^ {2}4 {4}status: a source is unhealthy/m);
  });

  it('4 for dead letters, with the reason on the terminal', async () => {
    const r = await status(['--source', 'dead']);
    expect(r.code).toBe(EXIT.unhealthy);
    expect(r.stdout).toContain('verdict: UNHEALTHY: 1 study is dead-lettered');
  });

  it('4 for quarantined studies, and for a source never swept; --json gives every verdict', async () => {
    const q = await status(['--source', 'quarantined', '--json']);
    expect(q.code).toBe(EXIT.unhealthy);
    expect(JSON.parse(q.stdout)[0].verdict).toEqual({
      healthy: false,
      reasons: [{ code: 'quarantined', message: '1 study is quarantined (Study UID under two patients)' }],
    });
    const all = await status(['--json']);
    expect(all.code).toBe(EXIT.unhealthy);
    const verdicts = Object.fromEntries(
      JSON.parse(all.stdout).map((s: { sourceId: string; verdict: { reasons: { code: string }[] } }) => [
        s.sourceId,
        s.verdict.reasons.map((r) => r.code),
      ]),
    );
    expect(verdicts).toEqual({
      healthy: [],
      dead: ['dead-letters'],
      quarantined: ['quarantined'],
      never: ['coverage-never-swept'],
      short: ['coverage-short'],
    });
  });
});

describe('the verdict over the status data', () => {
  it('short: fewer synced than the minimum coverage of what the sweep listed', async () => {
    const v = sourceVerdict(await sourceStatus(store, config, 'short', at(10)));
    expect(v.healthy).toBe(false);
    expect(v.reasons).toEqual([{ code: 'coverage-short', message: expect.stringContaining('1 of 2 studies') }]);
  });

  it('overdue: the last complete sweep is older than sweep.maxAgeHours (48 h by default)', async () => {
    expect(sourceVerdict(await sourceStatus(store, config, 'healthy', at(47 * 3600))).healthy).toBe(true);
    const v = sourceVerdict(await sourceStatus(store, config, 'healthy', at(49 * 3600)));
    expect(v.reasons.map((r) => r.code)).toEqual(['coverage-overdue']);
  });

  it('failing studies alone (retried on their own) leave a swept source healthy', async () => {
    await store.studies.recordFailures('healthy', [failure('1.3', 5, 100)]);
    expect(sourceVerdict(await sourceStatus(store, config, 'healthy', at(200)))).toEqual({
      healthy: true,
      reasons: [],
    });
  });
});

describe('the built-in patient system, said once', () => {
  const NOTE = /Patient IDs without an issuer use the built-in system urn:pacs-fhir-bridge:<source id>:patient-id/;

  it('status says it in one line for the sources on it, and --json carries each source’s system', async () => {
    const text = await status([]);
    const notes = text.stdout.split('\n').filter((l) => NOTE.test(l));
    expect(notes).toEqual([expect.stringMatching(/^note: sources healthy, dead, quarantined, never, short: /)]);
    const [s] = JSON.parse((await status(['--source', 'healthy', '--json'])).stdout);
    expect(s.patientSystem).toEqual({ system: 'urn:pacs-fhir-bridge:healthy:patient-id', builtIn: true });
  });

  it('start-up warns once; a source with its defaultSystem set is not named', async () => {
    const dir = path.join(tmp, 'config-own-system');
    mkdirSync(dir);
    const sources = [
      {
        id: 'own',
        qidoBase: 'http://127.0.0.1:9/dicom-web',
        retries: 0,
        mapping: { patient: { defaultSystem: 'urn:oid:1.2.3' } },
      },
      { id: 'builtin', qidoBase: 'http://127.0.0.1:9/dicom-web', retries: 0 },
    ];
    writeFileSync(
      path.join(dir, 'default.json'),
      JSON.stringify({
        sources,
        store: { path: path.join(tmp, 'own.sqlite') },
        sinks: { validation: { enabled: false } },
      }),
    );
    writeFileSync(path.join(dir, 'production.json'), '{}');
    const run = await startBridge(dir, ['sync', '--once']).done; // the PACS is not there: the run fails
    const warned = run.stderr.split('\n').filter((l) => NOTE.test(l));
    expect(warned).toHaveLength(1);
    expect(JSON.parse(warned[0]!)).toMatchObject({ level: 40, sources: ['builtin'] });
    const quiet = await startBridge(dir, ['status', '--source', 'own']).done;
    expect(quiet.stdout).not.toMatch(NOTE);
  });
});
