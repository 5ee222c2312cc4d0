/** Run leases and run history in the PostgreSQL store, where several replicas contend for each lane. */
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type { RunRepository } from '../repositories';
import { iso, toRun, type RunRow } from '../rows';
import type { LeaseResult, RunCounts, RunKind, RunRecord, RunStatus } from '../types';
import { changes, one, rows, Rollback, transactionOr } from './db';

export class PgRuns implements RunRepository {
  constructor(private readonly pool: Pool) {}

  /**
   * The lease row is read FOR UPDATE, so a replica deciding on it holds off the others until it commits.
   * A lane never leased has no row to lock: the insert's key decides, and the loser reads the winner's row.
   */
  async acquireLease(
    lane: string,
    owner: string,
    ttlMs: number,
    isAbandoned: (holder: string) => boolean = () => false,
    at: Date = new Date(),
  ): Promise<LeaseResult> {
    const expires = iso(new Date(at.getTime() + ttlMs));
    return transactionOr(this.pool, async (c): Promise<LeaseResult> => {
      const row = await this.lockedLease(c, lane, owner, at, expires);
      if (!row) return { ok: true }; // inserted: the lane was free
      if (row.owner !== owner && row.expires_at > iso(at) && !isAbandoned(row.owner))
        throw new Rollback<LeaseResult>({ ok: false, holder: row.owner });
      await c.query('UPDATE source_leases SET owner = $2, acquired_at = $3, expires_at = $4 WHERE source_id = $1', [
        lane,
        owner,
        iso(at),
        expires,
      ]);
      return { ok: true };
    });
  }

  /**
   * Takes a free lane (undefined), or locks and returns its current lease. A lease released between the
   * insert and the read leaves nothing to lock: the lane is free again, so the insert is tried again.
   */
  private async lockedLease(
    c: PoolClient,
    lane: string,
    owner: string,
    at: Date,
    expires: string,
  ): Promise<{ owner: string; expires_at: string } | undefined> {
    for (;;) {
      const inserted = await changes(
        c,
        `INSERT INTO source_leases (source_id, owner, acquired_at, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT (source_id) DO NOTHING`,
        [lane, owner, iso(at), expires],
      );
      if (inserted) return undefined;
      const row = await one<{ owner: string; expires_at: string }>(
        c,
        'SELECT owner, expires_at FROM source_leases WHERE source_id = $1 FOR UPDATE',
        [lane],
      );
      if (row) return row;
    }
  }

  async renewLease(lane: string, owner: string, ttlMs: number, at: Date = new Date()): Promise<boolean> {
    return (
      (await changes(this.pool, 'UPDATE source_leases SET expires_at = $1 WHERE source_id = $2 AND owner = $3', [
        iso(new Date(at.getTime() + ttlMs)),
        lane,
        owner,
      ])) > 0
    );
  }

  async releaseLease(lane: string, owner: string): Promise<void> {
    await this.pool.query('DELETE FROM source_leases WHERE source_id = $1 AND owner = $2', [lane, owner]);
  }

  async startRun(sourceId: string, kind: RunKind, at: Date = new Date(), owner?: string): Promise<string> {
    const runId = randomUUID();
    await this.pool.query(
      `INSERT INTO runs (run_id, source_id, kind, started_at, status, owner) VALUES ($1, $2, $3, $4, 'running', $5)`,
      [runId, sourceId, kind, iso(at), owner ?? null],
    );
    return runId;
  }

  async updateRunCounts(runId: string, counts: RunCounts): Promise<void> {
    await this.pool.query('UPDATE runs SET counts = $1 WHERE run_id = $2', [JSON.stringify(counts), runId]);
  }

  async finishRun(
    runId: string,
    r: { status: Exclude<RunStatus, 'running'>; counts: RunCounts; error?: string; at?: Date },
  ): Promise<void> {
    await this.pool.query('UPDATE runs SET ended_at = $1, status = $2, counts = $3, error = $4 WHERE run_id = $5', [
      iso(r.at),
      r.status,
      JSON.stringify(r.counts),
      r.error ?? null,
      runId,
    ]);
  }

  async closeAbandonedRuns(sourceId?: string, lane?: 'sweep' | 'other'): Promise<number> {
    const sql = `UPDATE runs SET status = 'interrupted', ended_at = COALESCE(ended_at, $1) WHERE status = 'running'`;
    // Sweeps run beside polls, each under a lease of its own: one lane's start closes only that lane's runs.
    const laneSql =
      lane === 'sweep' ? ` AND kind = 'sweep'` : lane === 'other' ? ` AND kind NOT IN ('sweep', 'backfill')` : '';
    return sourceId
      ? changes(this.pool, `${sql} AND source_id = $2${laneSql}`, [iso(), sourceId])
      : changes(this.pool, sql, [iso()]);
  }

  async closeRunsOf(owners: string[], kind: RunKind): Promise<number> {
    if (!owners.length) return 0;
    return changes(
      this.pool,
      `UPDATE runs SET status = 'interrupted', ended_at = COALESCE(ended_at, $1) WHERE status = 'running' AND kind = $2
         AND owner = ANY($3::text[])`,
      [iso(), kind, owners],
    );
  }

  async listRuns(sourceId: string, limit = 20, kind?: RunKind): Promise<RunRecord[]> {
    const found = kind
      ? await rows<RunRow>(
          this.pool,
          'SELECT * FROM runs WHERE source_id = $1 AND kind = $2 ORDER BY id DESC LIMIT $3',
          [sourceId, kind, limit],
        )
      : await rows<RunRow>(this.pool, 'SELECT * FROM runs WHERE source_id = $1 ORDER BY id DESC LIMIT $2', [
          sourceId,
          limit,
        ]);
    return found.map(toRun);
  }
}
