/**
 * The state backends the contract tests run against: SQLite in a temporary file and PostgreSQL on the
 * throwaway server of test/harness/postgres.ts, each test on a fresh database (a new file, a new schema).
 * `replica()` opens a second store on the same database, as a second process or replica would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openPostgresStore, type PostgresStateStore } from '../../../src/state/postgres';
import type { StateStore } from '../../../src/state/repositories';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state/sqlite';
import { postgresMissing, startPostgres, type PostgresServer } from '../../harness/postgres';

export interface Backend<S extends StateStore = StateStore> {
  name: 'sqlite' | 'postgres';
  /** A store on a new, empty database. */
  fresh(): Promise<S>;
  /** Another store on the database `of` uses. */
  replica(of: S): Promise<S>;
  /** Starts and stops what the backend needs (the PostgreSQL server). */
  setUp(): Promise<void>;
  tearDown(): Promise<void>;
}

let counter = 0;

export function sqliteBackend(): Backend<SqliteStateStore> {
  let dir = '';
  return {
    name: 'sqlite',
    async setUp() {
      dir = mkdtempSync(path.join(os.tmpdir(), 'state-contract-'));
    },
    async tearDown() {
      rmSync(dir, { recursive: true, force: true });
    },
    async fresh() {
      return openSqliteStore(path.join(dir, `state-${++counter}.sqlite`));
    },
    async replica(of) {
      return openSqliteStore(of.location);
    },
  };
}

export function postgresBackend(): Backend<PostgresStateStore> {
  let server: PostgresServer | undefined;
  const open = (schema: string) =>
    openPostgresStore({
      connectionString: server!.connectionString,
      password: server!.password,
      poolSize: 5,
      schema,
      ssl: false,
    });
  return {
    name: 'postgres',
    async setUp() {
      server = await startPostgres();
    },
    async tearDown() {
      await server?.stop();
    },
    async fresh() {
      return open(`contract_${process.pid}_${++counter}`);
    },
    async replica(of) {
      return open(of.schema);
    },
  };
}

/** Both backends, or SQLite alone (with a note saying why) when PostgreSQL is not installed. */
export function backends(): Backend[] {
  const missing = postgresMissing();
  if (missing) {
    console.warn(`PostgreSQL contract tests skipped: ${missing}`);
    return [sqliteBackend()];
  }
  return [sqliteBackend(), postgresBackend()] as Backend[];
}
