/**
 * Claimable shares of a job in the PostgreSQL store. A claim takes the first claimable item with
 * FOR UPDATE SKIP LOCKED: replicas claiming at once each get a different item and none waits on another.
 */
import type { Pool } from 'pg';
import type { WorkQueue } from '../repositories';
import { iso, toWorkItem, type WorkItemRow } from '../rows';
import type { WorkItem } from '../types';
import { changes, lockKeys, one, rows, transaction } from './db';

const CLAIM_SQL = `UPDATE work_items SET status = 'claimed', claimed_by = $2, claim_expires = $3, attempts = attempts + 1
  WHERE id = (
    SELECT id FROM work_items WHERE job = $1 AND (status = 'pending' OR (status = 'claimed' AND claim_expires <= $4))
      ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING *`;

export class PgWorkQueue implements WorkQueue {
  constructor(private readonly pool: Pool) {}

  /** Under a lock per job: two replicas starting the same job at once enqueue it once. */
  async enqueue(
    job: string,
    sourceId: string,
    items: { payload: Record<string, unknown>; done?: boolean }[],
  ): Promise<void> {
    await transaction(this.pool, async (c) => {
      await lockKeys(c, 'job', [job]);
      if (await one(c, 'SELECT 1 FROM work_items WHERE job = $1 LIMIT 1', [job])) return;
      for (const i of items)
        await c.query(`INSERT INTO work_items (job, source_id, payload, status) VALUES ($1, $2, $3, $4)`, [
          job,
          sourceId,
          JSON.stringify(i.payload),
          i.done ? 'done' : 'pending',
        ]);
    });
  }

  async claimed(job: string): Promise<WorkItem[]> {
    const found = await rows<WorkItemRow>(
      this.pool,
      `SELECT * FROM work_items WHERE job = $1 AND status = 'claimed' ORDER BY id`,
      [job],
    );
    return found.map(toWorkItem);
  }

  async claim(job: string, owner: string, ttlMs: number, at: Date = new Date()): Promise<WorkItem | undefined> {
    const row = await one<WorkItemRow>(this.pool, CLAIM_SQL, [
      job,
      owner,
      iso(new Date(at.getTime() + ttlMs)),
      iso(at),
    ]);
    return row && toWorkItem(row);
  }

  async renew(id: number, owner: string, ttlMs: number, at: Date = new Date()): Promise<boolean> {
    return (
      (await changes(
        this.pool,
        `UPDATE work_items SET claim_expires = $1 WHERE id = $2 AND claimed_by = $3 AND status = 'claimed'`,
        [iso(new Date(at.getTime() + ttlMs)), id, owner],
      )) > 0
    );
  }

  async complete(id: number, owner: string): Promise<void> {
    await this.pool.query(
      `UPDATE work_items SET status = 'done', claim_expires = NULL WHERE id = $1 AND claimed_by = $2 AND status = 'claimed'`,
      [id, owner],
    );
  }

  async release(id: number, owner: string): Promise<void> {
    await this.pool.query(
      `UPDATE work_items SET status = 'pending', claimed_by = NULL, claim_expires = NULL
         WHERE id = $1 AND claimed_by = $2 AND status = 'claimed'`,
      [id, owner],
    );
  }

  async progress(job: string): Promise<{ pending: number; claimed: number; done: number }> {
    const found = await rows<{ status: string; n: number }>(
      this.pool,
      'SELECT status, COUNT(*) AS n FROM work_items WHERE job = $1 GROUP BY status',
      [job],
    );
    const n = (s: string) => found.find((r) => r.status === s)?.n ?? 0;
    return { pending: n('pending'), claimed: n('claimed'), done: n('done') };
  }

  /** Jobs of these sources with items not done yet (pending, or claimed by someone). */
  async openJobs(sourceIds: string[]): Promise<{ job: string; sourceId: string }[]> {
    if (!sourceIds.length) return [];
    const found = await rows<{ job: string; source_id: string }>(
      this.pool,
      `SELECT DISTINCT job, source_id FROM work_items WHERE status != 'done' AND source_id = ANY($1::text[]) ORDER BY job`,
      [sourceIds],
    );
    return found.map((r) => ({ job: r.job, sourceId: r.source_id }));
  }
}
