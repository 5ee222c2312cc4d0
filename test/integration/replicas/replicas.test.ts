/**
 * Several bridge processes on one PostgreSQL store, as replicas on Kubernetes would be: two `serve` replicas
 * (the real CLI, each with its own instance name, as pods on different hosts) sync two Orthanc sources while a
 * `backfill` command (a one-off job) backfills a range that both replicas join. Every study is written once,
 * no detail query is made twice, the store-mode API answers alike on every replica and on SQLite, and a replica
 * killed with SIGKILL mid-backfill leaves the others to finish its windows once its claims lapse.
 */
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import axios from 'axios';
import type { Bundle } from 'fhir/r4';
import { EXIT } from '../../../src/cli/exitCodes';
import { imagingStudyId } from '../../../src/mapping';
import { copyState, openSqliteStore, type StateStore } from '../../../src/state';
import { openPostgresStore } from '../../../src/state/postgres';
import { generateCorpus, loadStudies, type SyntheticStudy } from '../../fixtures/synthetic';
import { freePort, startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { startPostgres, type PostgresServer } from '../../harness/postgres';
import { startRecordingProxy, type RecordingProxy } from '../../harness/recordingProxy';
import { until } from '../../harness/until';
import { startBridge, type BridgeChild } from '../../harness/bridgeCli';

const ROOT = path.resolve(__dirname, '../../..');
const SCHEMA = 'replicas';
const LEASE_SECONDS = 4;
const BASE_URL = 'http://bridge.test/fhir';
/** How long a step of several processes may take on a loaded CI machine. */
const WAIT_MS = 60_000;

interface Source {
  id: string;
  orthanc: OrthancServer;
  proxy: RecordingProxy;
  corpus: SyntheticStudy[];
}

let pg: PostgresServer;
let dir: string;
let a: Source;
let b: Source;
let store: StateStore;
const children: ChildProcess[] = [];

type Bridge = BridgeChild & { port?: number };

/** The CLI as one of the replicas (an instance name of its own, as a pod on another host), on the shared store. */
function bridge(args: string[], instance: string, env: Record<string, string> = {}): Bridge {
  const b = startBridge(dir, args, {
    LOG_LEVEL: 'warn',
    BRIDGE_INSTANCE_NAME: instance,
    BRIDGE_STORE_PG_PASSWORD: pg.password,
    ...env,
  });
  children.push(b.child);
  return b;
}

/** `serve` as `instance` (extra `args`, `env`), once it answers /healthz; its exit before that fails the test. */
async function replica(instance: string, args: string[] = [], env: Record<string, string> = {}): Promise<Bridge> {
  const port = await freePort();
  const r = { ...bridge(['serve', '--port', String(port), ...args], instance, env), port };
  let exited = '';
  void r.done.then((d) => (exited = `${instance} exited ${d.code ?? d.signal}: ${d.stderr.slice(-2000)}`));
  await until(
    `${instance} listening`,
    async () => {
      if (exited) throw new Error(exited);
      try {
        return (await axios.get(`http://127.0.0.1:${port}/healthz`)).status === 200 || undefined;
      } catch {
        return undefined;
      }
    },
    WAIT_MS,
  );
  return r;
}

async function source(id: string, seed: number, from: string): Promise<Source> {
  const orthanc = await startOrthanc();
  const proxy = await startRecordingProxy(orthanc.dicomWebBase);
  const corpus = generateCorpus({
    seed,
    studies: 24,
    days: { from, count: 8 },
    undated: 0,
    maxSeries: 2,
    maxInstances: 1,
  });
  await loadStudies(orthanc, corpus);
  return { id, orthanc, proxy, corpus };
}

/** How many series- and instance-level requests named each study: more than one is a study fetched twice. */
function detailQueriesPerStudy(s: Source): Map<string, number> {
  const n = new Map<string, number>();
  for (const r of s.proxy.requests.filter((q) => q.level === 'series' || q.level === 'instances')) {
    const url = decodeURIComponent(r.url);
    for (const study of s.corpus) {
      const key = `${r.level} ${study.studyUid}`;
      if (url.includes(study.studyUid)) n.set(key, (n.get(key) ?? 0) + 1);
    }
  }
  return n;
}

beforeAll(async () => {
  pg = await startPostgres();
  [a, b] = await Promise.all([source('a', 31, '20240101'), source('b', 32, '20220101')]);
  dir = mkdtempSync(path.join(os.tmpdir(), 'replicas-'));
  const config = {
    sources: [a, b].map((s) => ({
      id: s.id,
      qidoBase: s.proxy.via(s.orthanc.dicomWebBase),
      defaultTimezone: 'Asia/Taipei',
      retries: 0,
      changeFeed: { type: 'off' },
    })),
    store: { type: 'postgres', postgres: { connectionString: pg.connectionString, schema: SCHEMA, poolSize: 4 } },
    sync: {
      cron: '*/2 * * * * *',
      windowDays: 1,
      batchSize: 4,
      sweep: { cron: 'off' },
      coordination: { leaseSeconds: LEASE_SECONDS, workCheckSeconds: 1 },
      // Source a's polls cover its studies; source b's studies are older than any poll: the backfill's.
      sources: { a: { backfillFrom: '20240101' } },
    },
    sinks: { validation: { enabled: false } },
    api: {
      host: '127.0.0.1',
      baseUrl: BASE_URL,
      mode: 'store',
      storeFallback: false,
      allowUnrestrictedSearch: true,
      auth: { type: 'none' },
      cache: { enabled: false },
      audit: { enabled: false },
    },
    logging: { level: 'warn' },
  };
  writeFileSync(path.join(dir, 'default.json'), JSON.stringify(config));
  writeFileSync(path.join(dir, 'production.json'), '{}');
  // The environment mapping (the store password, BRIDGE_STORE_TYPE…), as the image ships it.
  copyFileSync(
    path.join(ROOT, 'config/custom-environment-variables.json'),
    path.join(dir, 'custom-environment-variables.json'),
  );
  store = await openPostgresStore({
    connectionString: pg.connectionString,
    password: pg.password,
    poolSize: 2,
    schema: SCHEMA,
    ssl: false,
  });
}, 180_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await store?.close();
  for (const s of [a, b]) {
    await s?.proxy.stop();
    await s?.orthanc.stop();
  }
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('two serve replicas and a backfill job on one PostgreSQL store', () => {
  let r1: Bridge;
  let r2: Bridge;

  it('write every study exactly once, fetch no study twice, and share the backfill', async () => {
    [r1, r2] = await Promise.all([replica('r1'), replica('r2')]);
    // A PACS slow enough that the backfill lasts a few of the replicas' work checks (1 s).
    b.proxy.delayMs = 150;
    const job = bridge(['backfill', '--source', 'b', '--from', '2022-01-01', '--to', '2022-01-08', '--json'], 'job');
    const finished = await job.done;
    b.proxy.delayMs = 0;
    expect(finished.code).toBe(0);
    // The polls of source a, on whichever replica holds its lease, catch up meanwhile.
    await until('source a synced', async () => (await store.studies.counts('a')).synced === a.corpus.length, WAIT_MS);

    for (const s of [a, b]) {
      const stored = await store.resources.listImagingStudies({ sourceId: s.id });
      expect(stored.map((r) => r.id).sort()).toEqual(s.corpus.map((c) => imagingStudyId(c.studyUid)).sort());
      // Written once: no second version of any study.
      expect(stored.filter((r) => r.meta?.versionId !== '1')).toEqual([]);
      expect([...detailQueriesPerStudy(s).values()].filter((n) => n > 1)).toEqual([]);
      expect(detailQueriesPerStudy(s).size).toBe(2 * s.corpus.length);
    }
    // The backfill's windows were shared: the job and at least one replica each synced some.
    await until(
      'the replicas done with the backfill',
      async () => (await store.runs.listRuns('b', 50, 'backfill')).every((r) => r.status !== 'running'),
      WAIT_MS,
    );
    const runs = (await store.runs.listRuns('b', 50, 'backfill')).filter((r) => (r.counts.windows ?? 0) > 0);
    const owners = new Set(runs.map((r) => r.owner?.split(':')[0]));
    expect(owners.has('job')).toBe(true);
    expect([...owners].some((o) => o === 'r1' || o === 'r2')).toBe(true);
    expect(runs.reduce((n, r) => n + (r.counts.windows ?? 0), 0)).toBe(8);
    expect(runs.every((r) => r.status === 'ok')).toBe(true);
  }, 120_000);

  it('answers store-mode searches alike on every replica and on SQLite (the same state copied)', async () => {
    const sqliteFile = path.join(dir, 'copy.sqlite');
    const sqlite = openSqliteStore(sqliteFile);
    await copyState(store, sqlite);
    await sqlite.close();
    // The same configuration on a SQLite store: the environment overrides store.type and path.
    const sqliteApi = await replica('sqlite-api', ['--no-sync'], {
      BRIDGE_STORE_TYPE: 'sqlite',
      BRIDGE_STORE_PATH: sqliteFile,
    });

    const someone = a.corpus[3]!;
    const queries = [
      'ImagingStudy?_count=7',
      'ImagingStudy?_count=7&_cursor=0.7',
      'ImagingStudy?_summary=count',
      'ImagingStudy?modality=CT&_count=100',
      'ImagingStudy?started=ge2022-01-04&started=le2024-01-03&_count=100',
      `ImagingStudy?identifier=urn:oid:${someone.studyUid}`,
      `ImagingStudy/${imagingStudyId(someone.studyUid)}`,
      'Endpoint',
    ];
    const answer = async (port: number, q: string) => {
      const res = await axios.get(`http://127.0.0.1:${port}/fhir/${q}`, { validateStatus: () => true });
      const body = res.data as { resourceType: string; id?: string; meta?: unknown };
      // What differs by process, not by state: the Bundle's own id and timestamp.
      if (body.resourceType === 'Bundle') {
        delete body.id;
        delete body.meta;
      }
      return { status: res.status, body };
    };
    for (const q of queries) {
      const [one, two, three] = await Promise.all([r1, r2, sqliteApi].map((r) => answer(r.port!, q)));
      expect({ q, ...one }).toEqual({ q, ...two });
      expect({ q, ...one }).toEqual({ q, ...three });
      expect({ q, status: one.status }).toEqual({ q, status: 200 });
    }
    const all = (await answer(r1.port!, 'ImagingStudy?_count=100')).body as Bundle;
    expect(all.entry).toHaveLength(a.corpus.length + b.corpus.length);
    sqliteApi.child.kill('SIGTERM');
    await sqliteApi.done;
  }, 120_000);

  it('migrate-store copies a SQLite store into PostgreSQL, and refuses a target that already holds state', async () => {
    // The SQLite copy made above, moved into a schema of its own, as a site moving from one process to replicas would.
    const target = mkdtempSync(path.join(os.tmpdir(), 'replicas-migrate-'));
    const config = JSON.parse(readFileSync(path.join(dir, 'default.json'), 'utf8'));
    config.store.postgres.schema = 'migrated';
    writeFileSync(path.join(target, 'default.json'), JSON.stringify(config));
    writeFileSync(path.join(target, 'production.json'), '{}');
    copyFileSync(
      path.join(dir, 'custom-environment-variables.json'),
      path.join(target, 'custom-environment-variables.json'),
    );
    const env = { BRIDGE_STORE_PG_PASSWORD: pg.password, LOG_LEVEL: 'warn' };
    const from = path.join(dir, 'copy.sqlite');
    const first = await startBridge(target, ['migrate-store', '--from', from], env).done;
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^studies\t48$/m);
    const migrated = await openPostgresStore({
      connectionString: pg.connectionString,
      password: pg.password,
      poolSize: 2,
      schema: 'migrated',
      ssl: false,
    });
    // The replicas go on polling the live store: the copy is compared with the file it came from.
    const source = openSqliteStore(from);
    try {
      for (const id of ['a', 'b']) {
        expect(await migrated.studies.counts(id)).toEqual(await source.studies.counts(id));
        expect(await migrated.runs.listRuns(id, 1000)).toEqual(await source.runs.listRuns(id, 1000));
      }
      const ct = (s: StateStore) =>
        s.resources.searchImagingStudies(
          { sourceId: 'a', tokens: [[{ kind: 'modality', value: 'CT' }]] },
          { limit: 100 },
        );
      expect((await ct(migrated)).length).toBeGreaterThan(0);
      expect(await ct(migrated)).toEqual(await ct(source));
    } finally {
      await migrated.close();
      await source.close();
    }
    const again = await startBridge(target, ['migrate-store', '--from', from], env).done;
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/not empty.*force/);
    rmSync(target, { recursive: true, force: true });
  }, 60_000);

  it('reports status, readiness and the status page from the shared store', async () => {
    const status = await bridge(['status', '--json'], 'status').done;
    // Backfilled, never swept: unproven coverage is what `status` flags, with its own exit status.
    expect(status.code).toBe(EXIT.unhealthy);
    const byId = Object.fromEntries((JSON.parse(status.stdout) as { sourceId: string }[]).map((s) => [s.sourceId, s]));
    for (const id of ['a', 'b'])
      expect(byId[id]).toMatchObject({ verdict: { healthy: false, reasons: [{ code: 'coverage-never-swept' }] } });
    expect(byId.a).toMatchObject({ counts: { synced: a.corpus.length, failing: 0, dead: 0 } });
    expect(byId.b).toMatchObject({ counts: { synced: b.corpus.length }, lastRun: expect.anything() });
    const replay = await bridge(['replay', '--source', 'a'], 'replay').done;
    expect(replay).toMatchObject({ code: 0, stdout: 'a: 0 dead letters re-queued\n' });
    const ready = await axios.get(`http://127.0.0.1:${r2.port}/readyz`, { validateStatus: () => true });
    expect(ready.data.dependencies).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'store', ok: true, detail: expect.stringMatching(/postgres/) }),
      ]),
    );
    const page = await axios.get(`http://127.0.0.1:${r1.port}/status?format=json`);
    expect(page.data.sources.map((s: { sourceId: string }) => s.sourceId)).toEqual(['a', 'b']);
  }, 60_000);

  it('a replica killed mid-backfill: its windows are retaken once its claims lapse, and the job completes', async () => {
    // Older studies on source a, and a slow PACS, so the backfill is still going when the replica dies.
    const late = generateCorpus({
      seed: 33,
      studies: 16,
      days: { from: '20210101', count: 8 },
      undated: 0,
      maxSeries: 1,
    });
    await loadStudies(a.orthanc, late);
    a.proxy.delayMs = 150;
    const name = 'backfill:a:20210101-20210108';
    const job = bridge(['backfill', '--source', 'a', '--from', '2021-01-01', '--to', '2021-01-08'], 'job');
    // A replica holding a window: the one to kill.
    const holder = await until(
      'a replica holding a window',
      async () => {
        const held = (await store.work.claimed(name)).map((i) => i.claimedBy!);
        return held.find((h) => h.startsWith('r1:') || h.startsWith('r2:'));
      },
      WAIT_MS,
    );
    const victim = holder.startsWith('r1:') ? r1 : r2;
    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    await victim.done;
    // Its claims lapse after the lease time; another process takes them over then, not much later.
    await until(
      'the dead replica holding nothing',
      async () => (await store.work.claimed(name)).every((i) => i.claimedBy !== holder),
      WAIT_MS,
    );
    const takeoverMs = Date.now() - killedAt;
    expect(takeoverMs).toBeLessThan((LEASE_SECONDS + 3) * 1000);
    a.proxy.delayMs = 0;
    const finished = await job.done;
    expect(finished.code).toBe(0);
    expect(await store.work.progress(name)).toEqual({ pending: 0, claimed: 0, done: 8 });
    for (const s of late) expect(await store.resources.get('ImagingStudy', imagingStudyId(s.studyUid))).toBeDefined();
    // The dead replica's backfill run is closed, by whoever found it gone; the survivor's ends once it sees the
    // job done (its next look, within a second).
    const runs = await until(
      'every backfill run ended',
      async () => {
        const all = await store.runs.listRuns('a', 50, 'backfill');
        return all.every((r) => r.status !== 'running') ? all : undefined;
      },
      WAIT_MS,
    );
    expect(runs.filter((r) => r.owner === holder).map((r) => r.status)).toEqual(['interrupted']);
  }, 120_000);
});
