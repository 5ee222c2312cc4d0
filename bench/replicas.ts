/**
 * Replicas on PostgreSQL: the same backfill of two sources (both over the bench corpus's Orthanc, as two PACS
 * holding the same studies would be) by one bridge process and by two started together, which share the
 * StudyDate windows through the store's work items. Also the store-mode search latency on PostgreSQL against
 * SQLite over the same 20,000 stored studies. Run alone: `npm run bench -- replicas`.
 * On this 2-core machine the PACS and both replicas share the cores, so two replicas cannot be twice as fast:
 * the figure shows the work is shared without waiting, not a scaling law.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startPostgres, type PostgresServer } from '../test/harness/postgres';
import { runBridge, summariesIn } from './bridgeProcess';
import type { BenchCorpus } from './corpus';
import { run as runStoreSearch, type StoreSearchResult } from './storeSearch';

const ROOT = path.resolve(__dirname, '..');
const MAIN = path.join(ROOT, 'dist/cli/main.js');

export interface ReplicasResult {
  studies: number;
  sources: number;
  oneReplicaMs: number;
  twoReplicasMs: number;
  /** One replica's time ÷ two replicas' time. */
  speedup: number;
  /** Windows each of the two replicas synced (shared, none twice). */
  windowsPerReplica: number[];
  search: { sqlite: StoreSearchResult; postgres: StoreSearchResult; postgresToSqlite: number };
}

async function backfillProcess(dir: string, instance: string, from: string, to: string, password: string) {
  const args = ['backfill', '--from', from, '--to', to, '--json', '--no-progress'];
  const env = { BRIDGE_INSTANCE_NAME: instance, BRIDGE_STORE_PG_PASSWORD: password };
  const { code, stdout, stderr } = await runBridge(dir, args, env);
  if (code !== 0) throw new Error(`backfill ${instance} exited ${code}: ${stderr.slice(-2000)}`);
  return summariesIn(stdout);
}

/** A configuration folder for the corpus as two sources, state in its own PostgreSQL schema. */
function configFolder(corpus: BenchCorpus, pg: PostgresServer, schema: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-replicas-'));
  const source = (id: string) => ({ id, qidoBase: corpus.orthanc.dicomWebBase, defaultTimezone: 'Asia/Taipei' });
  writeFileSync(
    path.join(dir, 'default.json'),
    JSON.stringify({
      sources: [source('pacs-1'), source('pacs-2')],
      store: { type: 'postgres', postgres: { connectionString: pg.connectionString, schema } },
      logging: { level: 'warn' },
    }),
  );
  writeFileSync(path.join(dir, 'bench.json'), '{}');
  writeFileSync(
    path.join(dir, 'custom-environment-variables.json'),
    JSON.stringify({ store: { postgres: { password: 'BRIDGE_STORE_PG_PASSWORD' } } }),
  );
  return dir;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, value };
}

export async function runReplicas(
  corpus: BenchCorpus,
  log: (line: string) => void = () => {},
): Promise<ReplicasResult> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npm run build" (npm run bench does)`);
  const pg = await startPostgres();
  const dirs: string[] = [];
  try {
    const folder = (schema: string) => {
      const d = configFolder(corpus, pg, schema);
      dirs.push(d);
      return d;
    };
    log('replicas: one process backfills two sources');
    const one = folder('one_replica');
    const single = await timed(() => backfillProcess(one, 'r1', corpus.from, corpus.to, pg.password));
    log('replicas: two processes share the same backfill');
    const two = folder('two_replicas');
    const pair = await timed(() =>
      Promise.all(['r1', 'r2'].map((r) => backfillProcess(two, r, corpus.from, corpus.to, pg.password))),
    );
    const written = pair.value.flat().reduce((n, s) => n + (s.counts.written ?? 0), 0);
    if (written !== 2 * corpus.counts.studies)
      throw new Error(`two replicas wrote ${written} studies, not ${2 * corpus.counts.studies}`);
    log('store-mode search: SQLite, then PostgreSQL, 20,000 studies');
    const sqlite = await runStoreSearch();
    const postgres = await runStoreSearch({ postgres: pg });
    const ratios = postgres.queries.map((q, i) => q.indexedMs / sqlite.queries[i]!.indexedMs);
    return {
      studies: corpus.counts.studies,
      sources: 2,
      oneReplicaMs: single.ms,
      twoReplicasMs: pair.ms,
      speedup: single.ms / pair.ms,
      windowsPerReplica: pair.value.map((runs) => runs.reduce((n, s) => n + (s.counts.windows ?? 0), 0)),
      search: {
        sqlite,
        postgres,
        postgresToSqlite: Math.exp(ratios.reduce((a, r) => a + Math.log(r), 0) / ratios.length),
      },
    };
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await pg.stop();
  }
}
