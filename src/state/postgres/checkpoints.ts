/** Checkpoints in the PostgreSQL store. */
import type { Pool } from 'pg';
import type { CheckpointRepository } from '../repositories';
import { one, rows } from './db';

export class PgCheckpoints implements CheckpointRepository {
  constructor(private readonly pool: Pool) {}

  async get(sourceId: string, name = 'poll'): Promise<string | undefined> {
    const row = await one<{ through_date: string }>(
      this.pool,
      'SELECT through_date FROM checkpoints WHERE source_id = $1 AND name = $2',
      [sourceId, name],
    );
    return row?.through_date;
  }

  async advance(sourceId: string, throughDate: string, name = 'poll'): Promise<void> {
    await this.pool.query(
      `INSERT INTO checkpoints (source_id, name, through_date, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (source_id, name) DO UPDATE SET through_date = EXCLUDED.through_date, updated_at = EXCLUDED.updated_at
         WHERE EXCLUDED.through_date > checkpoints.through_date`,
      [sourceId, name, throughDate, new Date().toISOString()],
    );
  }

  async list(sourceId: string): Promise<{ name: string; throughDate: string; updatedAt: string }[]> {
    const found = await rows<{ name: string; through_date: string; updated_at: string }>(
      this.pool,
      'SELECT name, through_date, updated_at FROM checkpoints WHERE source_id = $1 ORDER BY name',
      [sourceId],
    );
    return found.map((r) => ({ name: r.name, throughDate: r.through_date, updatedAt: r.updated_at }));
  }
}
