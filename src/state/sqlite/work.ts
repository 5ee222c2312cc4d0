/**
 * Claimable shares of a job in the embedded store. One process usually works alone here, but a
 * `backfill` beside `serve` on the same file shares a job's items the same way replicas do on PostgreSQL.
 */
import type Database from 'better-sqlite3';
import type { WorkQueue } from '../repositories';
import { iso, toWorkItem, type WorkItemRow } from '../rows';
import type { WorkItem } from '../types';
import { statement } from './statements';

export const WORK_ITEMS_SQL = `
  CREATE TABLE work_items (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    job           TEXT NOT NULL,             -- e.g. 'backfill:<source>:<from>-<to>'
    source_id     TEXT NOT NULL,
    payload       TEXT NOT NULL,             -- JSON, what the job's owner wrote (a window)
    status        TEXT NOT NULL CHECK (status IN ('pending', 'claimed', 'done')),
    claimed_by    TEXT,
    claim_expires TEXT,                      -- a claim not renewed by then is anyone's again
    attempts      INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX work_items_job ON work_items (job, status, id);
`;

export class SqliteWorkQueue implements WorkQueue {
  constructor(private readonly db: Database.Database) {}

  async enqueue(job: string, sourceId: string, payloads: Record<string, unknown>[]): Promise<void> {
    this.db
      .transaction(() => {
        if (statement(this.db, 'SELECT 1 FROM work_items WHERE job = ? LIMIT 1').get(job)) return;
        const insert = statement(
          this.db,
          `INSERT INTO work_items (job, source_id, payload, status) VALUES (?, ?, ?, 'pending')`,
        );
        for (const p of payloads) insert.run(job, sourceId, JSON.stringify(p));
      })
      .immediate();
  }

  async claim(job: string, owner: string, ttlMs: number, at: Date = new Date()): Promise<WorkItem | undefined> {
    return this.db
      .transaction(() => {
        const row = statement(
          this.db,
          `SELECT * FROM work_items WHERE job = ? AND (status = 'pending' OR (status = 'claimed' AND claim_expires <= ?))
             ORDER BY id LIMIT 1`,
        ).get(job, iso(at)) as WorkItemRow | undefined;
        if (!row) return undefined;
        statement(
          this.db,
          `UPDATE work_items SET status = 'claimed', claimed_by = ?, claim_expires = ?, attempts = attempts + 1 WHERE id = ?`,
        ).run(owner, iso(new Date(at.getTime() + ttlMs)), row.id);
        return toWorkItem(statement(this.db, 'SELECT * FROM work_items WHERE id = ?').get(row.id) as WorkItemRow);
      })
      .immediate();
  }

  async renew(id: number, owner: string, ttlMs: number, at: Date = new Date()): Promise<boolean> {
    return (
      statement(
        this.db,
        `UPDATE work_items SET claim_expires = ? WHERE id = ? AND claimed_by = ? AND status = 'claimed'`,
      ).run(iso(new Date(at.getTime() + ttlMs)), id, owner).changes > 0
    );
  }

  async complete(id: number, owner: string): Promise<void> {
    statement(
      this.db,
      `UPDATE work_items SET status = 'done', claim_expires = NULL WHERE id = ? AND claimed_by = ? AND status = 'claimed'`,
    ).run(id, owner);
  }

  async release(id: number, owner: string): Promise<void> {
    statement(
      this.db,
      `UPDATE work_items SET status = 'pending', claimed_by = NULL, claim_expires = NULL WHERE id = ? AND claimed_by = ? AND status = 'claimed'`,
    ).run(id, owner);
  }

  async progress(job: string): Promise<{ pending: number; claimed: number; done: number }> {
    const rows = statement(this.db, 'SELECT status, COUNT(*) AS n FROM work_items WHERE job = ? GROUP BY status').all(
      job,
    ) as { status: string; n: number }[];
    const n = (s: string) => Number(rows.find((r) => r.status === s)?.n ?? 0);
    return { pending: n('pending'), claimed: n('claimed'), done: n('done') };
  }

  async openJobs(sourceIds: string[]): Promise<{ job: string; sourceId: string }[]> {
    if (!sourceIds.length) return [];
    const rows = statement(
      this.db,
      `SELECT DISTINCT job, source_id FROM work_items WHERE status != 'done' AND source_id IN (${sourceIds.map(() => '?').join(', ')}) ORDER BY job`,
    ).all(...sourceIds) as { job: string; source_id: string }[];
    return rows.map((r) => ({ job: r.job, sourceId: r.source_id }));
  }
}
