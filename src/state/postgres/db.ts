/** Small helpers over a `pg` pool: queries, transactions, and advisory locks keyed by text. */
import type { Pool, PoolClient, QueryResultRow } from 'pg';

/** A pool (one statement, any connection) or a client inside a transaction. */
export type Queryable = Pool | PoolClient;

export async function rows<T extends QueryResultRow>(db: Queryable, sql: string, params: unknown[] = []): Promise<T[]> {
  return (await db.query<T>(sql, params)).rows;
}

export async function one<T extends QueryResultRow>(
  db: Queryable,
  sql: string,
  params: unknown[] = [],
): Promise<T | undefined> {
  return (await db.query<T>(sql, params)).rows[0];
}

/** Rows changed by a statement. */
export async function changes(db: Queryable, sql: string, params: unknown[] = []): Promise<number> {
  return (await db.query(sql, params)).rowCount ?? 0;
}

/** Commits what `fn` did, or rolls it back when it throws; a connection whose rollback failed is discarded. */
export async function transaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    client.release();
    return result;
  } catch (err) {
    const broken = await client.query('ROLLBACK').then(
      () => undefined,
      (e: Error) => e,
    );
    client.release(broken);
    throw err;
  }
}

/** Thrown inside `transaction` to roll back and answer `value` (a refused compare-and-set, a refused lease). */
export class Rollback<T> {
  constructor(readonly value: T) {}
}

/** `transaction`, where a thrown Rollback rolls back and answers its value instead of failing. */
export async function transactionOr<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  try {
    return await transaction(pool, fn);
  } catch (err) {
    if (err instanceof Rollback) return err.value as T;
    throw err;
  }
}

/**
 * Transaction-scoped advisory locks on text keys, taken in sorted order so two transactions locking
 * overlapping sets never deadlock. Unlike `FOR UPDATE` they also cover rows that do not exist yet.
 */
export async function lockKeys(c: PoolClient, namespace: string, keys: string[]): Promise<void> {
  const sorted = [...new Set(keys.map((k) => JSON.stringify([namespace, k])))].sort();
  if (!sorted.length) return;
  await c.query(
    'SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM (SELECT unnest($1::text[]) AS k ORDER BY 1) s',
    [sorted],
  );
}
