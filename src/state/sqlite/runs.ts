/** Run leases and run history in the embedded store. */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { RunRepository } from '../repositories';
import { iso, toRun, type RunRow } from '../rows';
import type { LeaseResult, RunCounts, RunKind, RunRecord, RunStatus } from '../types';
import { statement } from './statements';

export class SqliteRuns implements RunRepository {
  constructor(private readonly db: Database.Database) {}

  async acquireLease(
    lane: string,
    owner: string,
    ttlMs: number,
    isAbandoned: (holder: string) => boolean = () => false,
    at: Date = new Date(),
  ): Promise<LeaseResult> {
    return this.db
      .transaction((): LeaseResult => {
        const row = statement(this.db, 'SELECT owner, expires_at FROM source_leases WHERE source_id = ?').get(lane) as
          { owner: string; expires_at: string } | undefined;
        if (row && row.owner !== owner && row.expires_at > iso(at) && !isAbandoned(row.owner))
          return { ok: false, holder: row.owner };
        statement(
          this.db,
          `INSERT INTO source_leases (source_id, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (source_id) DO UPDATE SET owner = excluded.owner, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at`,
        ).run(lane, owner, iso(at), iso(new Date(at.getTime() + ttlMs)));
        return { ok: true };
      })
      .immediate();
  }

  async renewLease(lane: string, owner: string, ttlMs: number, at: Date = new Date()): Promise<boolean> {
    const res = statement(this.db, 'UPDATE source_leases SET expires_at = ? WHERE source_id = ? AND owner = ?').run(
      iso(new Date(at.getTime() + ttlMs)),
      lane,
      owner,
    );
    return res.changes > 0;
  }

  async releaseLease(lane: string, owner: string): Promise<void> {
    statement(this.db, 'DELETE FROM source_leases WHERE source_id = ? AND owner = ?').run(lane, owner);
  }

  async startRun(sourceId: string, kind: RunKind, at: Date = new Date(), owner?: string): Promise<string> {
    const runId = randomUUID();
    statement(
      this.db,
      `INSERT INTO runs (run_id, source_id, kind, started_at, status, owner) VALUES (?, ?, ?, ?, 'running', ?)`,
    ).run(runId, sourceId, kind, iso(at), owner ?? null);
    return runId;
  }

  async updateRunCounts(runId: string, counts: RunCounts): Promise<void> {
    statement(this.db, 'UPDATE runs SET counts = ? WHERE run_id = ?').run(JSON.stringify(counts), runId);
  }

  async finishRun(
    runId: string,
    r: { status: Exclude<RunStatus, 'running'>; counts: RunCounts; error?: string; at?: Date },
  ): Promise<void> {
    statement(this.db, 'UPDATE runs SET ended_at = ?, status = ?, counts = ?, error = ? WHERE run_id = ?').run(
      iso(r.at),
      r.status,
      JSON.stringify(r.counts),
      r.error ?? null,
      runId,
    );
  }

  async closeAbandonedRuns(sourceId?: string, lane?: 'sweep' | 'other'): Promise<number> {
    const sql = `UPDATE runs SET status = 'interrupted', ended_at = COALESCE(ended_at, ?) WHERE status = 'running'`;
    // Sweeps run beside polls, each under a lease of its own: one lane's start closes only that lane's runs.
    const laneSql =
      lane === 'sweep' ? ` AND kind = 'sweep'` : lane === 'other' ? ` AND kind NOT IN ('sweep', 'backfill')` : '';
    return (
      sourceId
        ? statement(this.db, `${sql} AND source_id = ?${laneSql}`).run(iso(), sourceId)
        : statement(this.db, sql).run(iso())
    ).changes;
  }

  async closeRunsOf(owners: string[], kind: RunKind): Promise<number> {
    if (!owners.length) return 0;
    return statement(
      this.db,
      `UPDATE runs SET status = 'interrupted', ended_at = COALESCE(ended_at, ?) WHERE status = 'running' AND kind = ?
         AND owner IN (${owners.map(() => '?').join(', ')})`,
    ).run(iso(), kind, ...owners).changes;
  }

  async listRuns(sourceId: string, limit = 20, kind?: RunKind): Promise<RunRecord[]> {
    const rows = (
      kind
        ? statement(this.db, 'SELECT * FROM runs WHERE source_id = ? AND kind = ? ORDER BY id DESC LIMIT ?').all(
            sourceId,
            kind,
            limit,
          )
        : statement(this.db, 'SELECT * FROM runs WHERE source_id = ? ORDER BY id DESC LIMIT ?').all(sourceId, limit)
    ) as RunRow[];
    return rows.map(toRun);
  }
}
