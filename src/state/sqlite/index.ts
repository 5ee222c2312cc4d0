/**
 * The embedded state store (better-sqlite3, WAL): every repository over one local file, so one hospital
 * runs with nothing to install. Each call is a short local transaction, answered synchronously inside
 * the async interface.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { TransferableStore } from '../transfer';
import { SqliteCheckpoints } from './checkpoints';
import { SqliteFeedState } from './feedState';
import { SqliteHoldings } from './holdings';
import { migrate, prepareConnection } from './migrations';
import { SqliteResources } from './resources';
import { SqliteRuns } from './runs';
import { SqliteStudies } from './studies';
import { SqliteSweeps } from './sweeps';
import { SqliteTransfer } from './transfer';
import { SqliteWorkQueue } from './work';

export class SqliteStateStore implements TransferableStore {
  readonly backend = 'sqlite';
  readonly db: Database.Database;
  readonly schemaVersion: number;
  readonly checkpoints: SqliteCheckpoints;
  readonly studies: SqliteStudies;
  readonly sweeps: SqliteSweeps;
  readonly feed: SqliteFeedState;
  readonly runs: SqliteRuns;
  readonly work: SqliteWorkQueue;
  readonly resources: SqliteResources;
  readonly holdings: SqliteHoldings;
  readonly transfer: SqliteTransfer;

  constructor(readonly location: string) {
    if (location !== ':memory:') mkdirSync(path.dirname(path.resolve(location)), { recursive: true });
    this.db = new Database(location);
    prepareConnection(this.db);
    this.schemaVersion = migrate(this.db);
    this.checkpoints = new SqliteCheckpoints(this.db);
    this.studies = new SqliteStudies(this.db);
    this.sweeps = new SqliteSweeps(this.db);
    this.feed = new SqliteFeedState(this.db);
    this.runs = new SqliteRuns(this.db);
    this.work = new SqliteWorkQueue(this.db);
    this.resources = new SqliteResources(this.db);
    this.holdings = new SqliteHoldings(this.db);
    this.transfer = new SqliteTransfer(this.db);
  }

  /**
   * Writable when a write transaction can start and write. The write (the schema version pragma, set to
   * itself) is rolled back, so probes leave no trace in the database.
   */
  async ping(): Promise<string> {
    if (!this.db.open) throw new Error('store is closed');
    const version = this.db.pragma('user_version', { simple: true }) as number;
    this.db.exec('BEGIN IMMEDIATE');
    try {
      this.db.pragma(`user_version = ${Number(version)}`);
    } finally {
      this.db.exec('ROLLBACK');
    }
    return `writable (schema ${version})`;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

export function openSqliteStore(file: string): SqliteStateStore {
  return new SqliteStateStore(file);
}
