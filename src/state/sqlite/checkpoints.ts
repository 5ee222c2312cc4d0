/** Checkpoints in the embedded store. */
import type Database from 'better-sqlite3';
import type { CheckpointRepository } from '../repositories';
import { statement } from './statements';

export class SqliteCheckpoints implements CheckpointRepository {
  constructor(private readonly db: Database.Database) {}

  async get(sourceId: string, name = 'poll'): Promise<string | undefined> {
    const row = statement(this.db, 'SELECT through_date FROM checkpoints WHERE source_id = ? AND name = ?').get(
      sourceId,
      name,
    ) as { through_date: string } | undefined;
    return row?.through_date;
  }

  async advance(sourceId: string, throughDate: string, name = 'poll'): Promise<void> {
    statement(
      this.db,
      `INSERT INTO checkpoints (source_id, name, through_date, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (source_id, name) DO UPDATE SET through_date = excluded.through_date, updated_at = excluded.updated_at
         WHERE excluded.through_date > checkpoints.through_date`,
    ).run(sourceId, name, throughDate, new Date().toISOString());
  }

  async list(sourceId: string): Promise<{ name: string; throughDate: string; updatedAt: string }[]> {
    const rows = statement(
      this.db,
      'SELECT name, through_date, updated_at FROM checkpoints WHERE source_id = ? ORDER BY name',
    ).all(sourceId) as { name: string; through_date: string; updated_at: string }[];
    return rows.map((r) => ({ name: r.name, throughDate: r.through_date, updatedAt: r.updated_at }));
  }
}
