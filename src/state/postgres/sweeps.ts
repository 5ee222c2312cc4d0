/** Full-range sweeps in the PostgreSQL store. */
import type { Pool, PoolClient } from 'pg';
import type { HeldRemovals, SweepRepository } from '../repositories';
import { iso, sweepCompletion, toSweep, type SweepRow } from '../rows';
import type { StudyStatus, SweepRecord } from '../types';
import { lockKeys, one, rows, transaction, type Queryable } from './db';

export class PgSweeps implements SweepRepository {
  constructor(private readonly pool: Pool) {}

  private async currentOn(db: Queryable, sourceId: string): Promise<SweepRecord | undefined> {
    const row = await one<SweepRow>(
      db,
      'SELECT * FROM sweeps WHERE source_id = $1 AND completed_at IS NULL ORDER BY id DESC LIMIT 1',
      [sourceId],
    );
    return row && toSweep(row);
  }

  /** Under a lock per source: two replicas opening at once share one sweep rather than start two. */
  async open(sourceId: string, at: Date = new Date()): Promise<SweepRecord> {
    return transaction(this.pool, async (c) => {
      await lockKeys(c, 'sweep', [sourceId]);
      const open = await this.currentOn(c, sourceId);
      if (open) return open;
      const row = await one<SweepRow>(c, 'INSERT INTO sweeps (source_id, started_at) VALUES ($1, $2) RETURNING *', [
        sourceId,
        iso(at),
      ]);
      return toSweep(row!);
    });
  }

  async advance(id: number, p: { throughDate?: string; listed: number; undatedDone?: boolean }): Promise<void> {
    await this.pool.query(
      `UPDATE sweeps SET through_date = COALESCE($1, through_date), listed = listed + $2, undated_done = undated_done OR $3
         WHERE id = $4`,
      [p.throughDate ?? null, p.listed, p.undatedDone ?? false, id],
    );
  }

  async complete(
    id: number,
    r: { vanished: number; unresolved: number; at?: Date; held?: HeldRemovals },
  ): Promise<SweepRecord> {
    return transaction(this.pool, async (c) => {
      const sweep = await this.byIdForUpdate(c, id);
      const byStatus = await rows<{ status: StudyStatus; n: number }>(
        c,
        'SELECT status, COUNT(*) AS n FROM studies WHERE source_id = $1 AND last_seen >= $2 GROUP BY status',
        [sweep.sourceId, sweep.startedAt],
      );
      const row = await one<SweepRow>(
        c,
        `UPDATE sweeps SET completed_at = $1, listed = $2, synced = $3, failing = $4, dead = $5, vanished = $6,
           unresolved = $7, held_removals = $8, held_of = $9, held_limit = $10 WHERE id = $11 RETURNING *`,
        [...sweepCompletion(byStatus, r), id],
      );
      return toSweep(row!);
    });
  }

  private async byIdForUpdate(c: PoolClient, id: number): Promise<SweepRecord> {
    const row = await one<SweepRow>(c, 'SELECT * FROM sweeps WHERE id = $1 FOR UPDATE', [id]);
    if (!row) throw new Error(`sweep ${id} not found`);
    return toSweep(row);
  }

  async lastComplete(sourceId: string): Promise<SweepRecord | undefined> {
    const row = await one<SweepRow>(
      this.pool,
      'SELECT * FROM sweeps WHERE source_id = $1 AND completed_at IS NOT NULL ORDER BY id DESC LIMIT 1',
      [sourceId],
    );
    return row && toSweep(row);
  }

  /** Only while that sweep is still the last complete one: a sweep completing meanwhile ends the hold. */
  async confirmHeld(sourceId: string, at: Date = new Date()): Promise<SweepRecord | undefined> {
    const row = await one<SweepRow>(
      this.pool,
      `UPDATE sweeps SET held_confirmed_at = COALESCE(held_confirmed_at, $2)
         WHERE id = (SELECT id FROM sweeps WHERE source_id = $1 AND completed_at IS NOT NULL ORDER BY id DESC LIMIT 1)
           AND held_removals IS NOT NULL
         RETURNING *`,
      [sourceId, iso(at)],
    );
    return row && toSweep(row);
  }

  async current(sourceId: string): Promise<SweepRecord | undefined> {
    return this.currentOn(this.pool, sourceId);
  }
}
