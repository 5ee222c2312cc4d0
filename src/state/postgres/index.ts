/**
 * The shared state store on PostgreSQL: every repository over one connection pool, for several bridge
 * replicas. Tables live in the configured schema, reached through each connection's search_path.
 */
import { Pool, types, type PoolConfig } from 'pg';
import type { PostgresConfig } from '../config';
import type { TransferableStore } from '../transfer';
import { PgCheckpoints } from './checkpoints';
import { PgFeedState } from './feedState';
import { migratePostgres } from './migrations';
import { PgResources } from './resources';
import { PgHoldings } from './holdings';
import { PgRuns } from './runs';
import { PgStudies } from './studies';
import { PgSweeps } from './sweeps';
import { PgTransfer } from './transfer';
import { PgWorkQueue } from './work';

const INT8_OID = 20;

/**
 * COUNT(*), BIGINT and BIGSERIAL values as numbers, for this pool only: the store's counts, ids and
 * millisecond instants stay far below 2^53, and the row converters are shared with SQLite's numbers.
 */
const storeTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? Number : types.getTypeParser(oid, format)) as typeof types.getTypeParser,
};

/**
 * The connection string with the configured password put in: `pg` lets a connection string's (empty)
 * password override a separate `password` setting, so the secret from the environment goes into the URL.
 */
export function connectionUrl(config: PostgresConfig): string | undefined {
  if (!config.connectionString || config.password === undefined) return config.connectionString;
  const url = new URL(config.connectionString);
  url.password = encodeURIComponent(config.password);
  return url.toString();
}

/** Where the store is, without credentials: postgres://user@host:port/database, schema <name>. */
export function describeLocation(config: PostgresConfig): string {
  if (!config.connectionString) return `postgres (PG* environment), schema ${config.schema}`;
  try {
    const url = new URL(config.connectionString);
    url.password = '';
    url.search = '';
    return `${url.toString()}, schema ${config.schema}`;
  } catch {
    return `postgres, schema ${config.schema}`;
  }
}

export function poolConfig(config: PostgresConfig): PoolConfig {
  return {
    connectionString: connectionUrl(config),
    ...(config.connectionString ? {} : { password: config.password }),
    max: config.poolSize,
    // The schema is a checked identifier (config), so it can go into the startup options as it is.
    options: `-c search_path=${config.schema}`,
    application_name: 'pacs-fhir-bridge',
    // An unreachable server fails a query (and the readiness probe) within seconds rather than hanging it.
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    ...(config.ssl ? { ssl: { rejectUnauthorized: true } } : {}),
    types: storeTypes,
  };
}

export class PostgresStateStore implements TransferableStore {
  readonly backend = 'postgres';
  readonly checkpoints: PgCheckpoints;
  readonly studies: PgStudies;
  readonly sweeps: PgSweeps;
  readonly feed: PgFeedState;
  readonly runs: PgRuns;
  readonly work: PgWorkQueue;
  readonly resources: PgResources;
  readonly holdings: PgHoldings;
  readonly transfer: PgTransfer;
  private closed = false;

  constructor(
    readonly pool: Pool,
    readonly location: string,
    readonly schema: string,
    readonly schemaVersion: number,
  ) {
    this.checkpoints = new PgCheckpoints(pool);
    this.studies = new PgStudies(pool);
    this.sweeps = new PgSweeps(pool);
    this.feed = new PgFeedState(pool);
    this.runs = new PgRuns(pool);
    this.work = new PgWorkQueue(pool);
    this.resources = new PgResources(pool);
    this.holdings = new PgHoldings(pool);
    this.transfer = new PgTransfer(pool);
  }

  /**
   * Writable when a transaction can write: the schema version row is set to itself and rolled back, so
   * probes leave no trace. A read-only standby or a full disk fails here rather than at the next sync.
   */
  async ping(): Promise<string> {
    if (this.closed) throw new Error('store is closed');
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const res = await client.query<{ version: number }>(
        'UPDATE schema_migrations SET version = version WHERE version = (SELECT MAX(version) FROM schema_migrations) RETURNING version',
      );
      await client.query('ROLLBACK');
      client.release();
      return `writable (postgres schema ${this.schema} v${res.rows[0]?.version ?? 0})`;
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

/**
 * Opens the pool and migrates the schema. `onIdleError` hears of a pooled connection lost while idle (the
 * server restarted): the pool drops it and the next query opens another; without a listener, Node would end
 * the process on the pool's 'error' event.
 */
export async function openPostgresStore(
  config: PostgresConfig,
  onIdleError: (err: Error) => void = () => undefined,
): Promise<PostgresStateStore> {
  const pool = new Pool(poolConfig(config));
  pool.on('error', onIdleError);
  try {
    const version = await migratePostgres(pool, config.schema);
    return new PostgresStateStore(pool, describeLocation(config), config.schema, version);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
}
