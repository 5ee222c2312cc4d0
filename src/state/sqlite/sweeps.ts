/** Full-range sweeps in the embedded store. */
import type Database from 'better-sqlite3';
import type { HeldRemovals, SweepRepository } from '../repositories';
import { iso, sweepCompletion, toSweep, type SweepRow } from '../rows';
import type { StudyStatus, SweepRecord } from '../types';
import { statement } from './statements';

export class SqliteSweeps implements SweepRepository {
  constructor(private readonly db: Database.Database) {}

  private byId(id: number): SweepRecord {
    return toSweep(statement(this.db, 'SELECT * FROM sweeps WHERE id = ?').get(id) as SweepRow);
  }

  private currentNow(sourceId: string): SweepRecord | undefined {
    const row = statement(
      this.db,
      'SELECT * FROM sweeps WHERE source_id = ? AND completed_at IS NULL ORDER BY id DESC LIMIT 1',
    ).get(sourceId) as SweepRow | undefined;
    return row && toSweep(row);
  }

  async open(sourceId: string, at: Date = new Date()): Promise<SweepRecord> {
    return this.db
      .transaction(() => {
        const open = this.currentNow(sourceId);
        if (open) return open;
        const id = statement(this.db, 'INSERT INTO sweeps (source_id, started_at) VALUES (?, ?)').run(sourceId, iso(at))
          .lastInsertRowid as number;
        return this.byId(id);
      })
      .immediate();
  }

  async advance(id: number, p: { throughDate?: string; listed: number; undatedDone?: boolean }): Promise<void> {
    statement(
      this.db,
      `UPDATE sweeps SET through_date = COALESCE(?, through_date), listed = listed + ?, undated_done = MAX(undated_done, ?) WHERE id = ?`,
    ).run(p.throughDate ?? null, p.listed, p.undatedDone ? 1 : 0, id);
  }

  async complete(
    id: number,
    r: { vanished: number; unresolved: number; at?: Date; held?: HeldRemovals },
  ): Promise<SweepRecord> {
    return this.db.transaction(() => {
      const sweep = this.byId(id);
      const byStatus = statement(
        this.db,
        `SELECT status, COUNT(*) AS n FROM studies WHERE source_id = ? AND last_seen >= ? GROUP BY status`,
      ).all(sweep.sourceId, sweep.startedAt) as { status: StudyStatus; n: number }[];
      statement(
        this.db,
        `UPDATE sweeps SET completed_at = ?, listed = ?, synced = ?, failing = ?, dead = ?, vanished = ?, unresolved = ?,
           held_removals = ?, held_of = ?, held_limit = ? WHERE id = ?`,
      ).run(...sweepCompletion(byStatus, r), id);
      return this.byId(id);
    })();
  }

  async lastComplete(sourceId: string): Promise<SweepRecord | undefined> {
    return this.lastCompleteNow(sourceId);
  }

  private lastCompleteNow(sourceId: string): SweepRecord | undefined {
    const row = statement(
      this.db,
      'SELECT * FROM sweeps WHERE source_id = ? AND completed_at IS NOT NULL ORDER BY id DESC LIMIT 1',
    ).get(sourceId) as SweepRow | undefined;
    return row && toSweep(row);
  }

  async confirmHeld(sourceId: string, at: Date = new Date()): Promise<SweepRecord | undefined> {
    return this.db
      .transaction(() => {
        const last = this.lastCompleteNow(sourceId);
        if (!last?.held) return undefined;
        statement(this.db, 'UPDATE sweeps SET held_confirmed_at = COALESCE(held_confirmed_at, ?) WHERE id = ?').run(
          iso(at),
          last.id,
        );
        return this.byId(last.id);
      })
      .immediate();
  }

  async current(sourceId: string): Promise<SweepRecord | undefined> {
    return this.currentNow(sourceId);
  }
}
