/** Which sources hold a study, with the study as each maps it, in the embedded store. */
import type Database from 'better-sqlite3';
import type { HoldingRepository } from '../repositories';
import { iso } from '../rows';
import type { StudyHolding } from '../types';
import { statement } from './statements';

const RECORD_SQL = `INSERT INTO study_holdings (study_uid, source_id, json, updated_at) VALUES (@studyUid, @sourceId, @json, @at)
  ON CONFLICT (study_uid, source_id) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at`;

export class SqliteHoldings implements HoldingRepository {
  constructor(private readonly db: Database.Database) {}

  async record(sourceId: string, holdings: { studyUid: string; json: string }[], at = new Date()): Promise<void> {
    const stmt = statement(this.db, RECORD_SQL);
    const when = iso(at);
    this.db.transaction(() => holdings.forEach((h) => stmt.run({ ...h, sourceId, at: when })))();
  }

  async of(studyUids: string[]): Promise<Map<string, StudyHolding[]>> {
    const stmt = statement(
      this.db,
      'SELECT source_id, json, updated_at FROM study_holdings WHERE study_uid = ? ORDER BY source_id',
    );
    const out = new Map<string, StudyHolding[]>();
    for (const uid of new Set(studyUids)) {
      const found = stmt.all(uid) as { source_id: string; json: string; updated_at: string }[];
      if (found.length)
        out.set(
          uid,
          found.map((r) => ({ studyUid: uid, sourceId: r.source_id, json: r.json, updatedAt: r.updated_at })),
        );
    }
    return out;
  }

  async release(sourceId: string, studyUid: string): Promise<void> {
    statement(this.db, 'DELETE FROM study_holdings WHERE study_uid = ? AND source_id = ?').run(studyUid, sourceId);
  }
}
