/** Which sources hold a study, with the study as each maps it, in the PostgreSQL store. */
import type { Pool } from 'pg';
import type { HoldingRepository } from '../repositories';
import { iso } from '../rows';
import type { StudyHolding } from '../types';
import { rows } from './db';

export class PgHoldings implements HoldingRepository {
  constructor(private readonly pool: Pool) {}

  async record(sourceId: string, holdings: { studyUid: string; json: string }[], at = new Date()): Promise<void> {
    if (!holdings.length) return;
    // One statement for the batch; a study named twice keeps its last mapping.
    const last = [...new Map(holdings.map((h) => [h.studyUid, h])).values()];
    await this.pool.query(
      `INSERT INTO study_holdings (study_uid, source_id, json, updated_at)
         SELECT u.study_uid, $1, u.json, $4 FROM unnest($2::text[], $3::text[]) AS u (study_uid, json) ORDER BY u.study_uid
       ON CONFLICT (study_uid, source_id) DO UPDATE SET json = EXCLUDED.json, updated_at = EXCLUDED.updated_at`,
      [sourceId, last.map((h) => h.studyUid), last.map((h) => h.json), iso(at)],
    );
  }

  async of(studyUids: string[]): Promise<Map<string, StudyHolding[]>> {
    const out = new Map<string, StudyHolding[]>();
    if (!studyUids.length) return out;
    const found = await rows<{ study_uid: string; source_id: string; json: string; updated_at: string }>(
      this.pool,
      `SELECT study_uid, source_id, json, updated_at FROM study_holdings WHERE study_uid = ANY($1::text[])
         ORDER BY study_uid, source_id`,
      [[...new Set(studyUids)]],
    );
    for (const r of found) {
      const list = out.get(r.study_uid) ?? [];
      list.push({ studyUid: r.study_uid, sourceId: r.source_id, json: r.json, updatedAt: r.updated_at });
      out.set(r.study_uid, list);
    }
    return out;
  }

  async release(sourceId: string, studyUid: string): Promise<void> {
    await this.pool.query('DELETE FROM study_holdings WHERE study_uid = $1 AND source_id = $2', [studyUid, sourceId]);
  }
}
