/** Per-study sync state in the PostgreSQL store: the SQLite statements, with the same columns and rules. */
import type { Pool, PoolClient } from 'pg';
import type { StudyStateRepository } from '../repositories';
import { failureOutcome, iso, sourceCounts, toState, type StudyRow } from '../rows';
import type { PendingSummary, SourceCounts, StudyFailure, StudyState, StudyStatus, SyncedStudy } from '../types';
import { lockKeys, one, rows, transaction } from './db';

/** Milliseconds between two ISO texts, rounded: SQLite's julianday difference × 86 400 000 gives the same. */
const msBetween = (later: string, earlier: string) =>
  `ROUND((EXTRACT(EPOCH FROM (${later})::timestamptz) - EXTRACT(EPOCH FROM (${earlier})::timestamptz)) * 1000)`;

// Freshness: from when this state was first seen pending (or this sighting) to now. The insert's is computed in JS.
// One statement for a whole batch; ordered by UID so two replicas' batches lock rows in one order.
const RECORD_SYNCED_SQL = `INSERT INTO studies (source_id, study_uid, study_date, status, fingerprint, content_hash, resource_id, version_id, last_seen,
                              attempts, next_retry_at, last_error, created_by_bridge, updated_at, first_seen, pending_since, synced_at, freshness_ms)
         SELECT $1, u.study_uid, u.study_date, 'synced', u.fingerprint, u.content_hash, u.resource_id, u.version_id, u.at, 0, NULL, NULL,
                COALESCE((SELECT r.created_by_bridge FROM resources r WHERE r.resource_type = 'ImagingStudy' AND r.id = u.resource_id), TRUE),
                u.at, u.seen_at, NULL, u.at, u.freshness_ms
           FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[])
             AS u (study_uid, study_date, fingerprint, content_hash, resource_id, version_id, at, seen_at, freshness_ms)
           ORDER BY u.study_uid
         ON CONFLICT (source_id, study_uid) DO UPDATE SET
           study_date = EXCLUDED.study_date, status = 'synced', fingerprint = EXCLUDED.fingerprint, content_hash = EXCLUDED.content_hash,
           resource_id = COALESCE(EXCLUDED.resource_id, studies.resource_id), version_id = COALESCE(EXCLUDED.version_id, studies.version_id),
           last_seen = EXCLUDED.last_seen, attempts = 0, next_retry_at = NULL, last_error = NULL, reason = NULL,
           created_by_bridge = EXCLUDED.created_by_bridge, updated_at = EXCLUDED.updated_at,
           first_seen = COALESCE(studies.first_seen, EXCLUDED.first_seen), pending_since = NULL, synced_at = EXCLUDED.synced_at,
           freshness_ms = ${msBetween('EXCLUDED.synced_at', 'COALESCE(studies.pending_since, EXCLUDED.first_seen)')}`;

const RECORD_FAILURE_SQL = `INSERT INTO studies (source_id, study_uid, study_date, status, fingerprint, last_seen, attempts, next_retry_at, last_error, updated_at,
                              first_seen, pending_since, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)
           ON CONFLICT (source_id, study_uid) DO UPDATE SET
             study_date = COALESCE(EXCLUDED.study_date, studies.study_date), status = EXCLUDED.status,
             fingerprint = COALESCE(EXCLUDED.fingerprint, studies.fingerprint), last_seen = COALESCE(EXCLUDED.last_seen, studies.last_seen),
             attempts = EXCLUDED.attempts, next_retry_at = EXCLUDED.next_retry_at, last_error = EXCLUDED.last_error,
             reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at, first_seen = COALESCE(studies.first_seen, EXCLUDED.first_seen),
             pending_since = COALESCE(studies.pending_since, EXCLUDED.pending_since)
           RETURNING *`;

/**
 * A batch split so no study appears twice in one statement (an upsert may not touch a row twice), in
 * order: a study named twice is written twice, the later after the earlier, as one-by-one writes would.
 */
function uniqueRounds(studies: SyncedStudy[]): SyncedStudy[][] {
  const rounds: SyncedStudy[][] = [];
  const seen = new Map<string, number>();
  for (const s of studies) {
    const n = seen.get(s.studyUid) ?? 0;
    seen.set(s.studyUid, n + 1);
    (rounds[n] ??= []).push(s);
  }
  return rounds;
}

/** The batch as column arrays, for unnest. */
function syncedColumns(studies: SyncedStudy[]): unknown[][] {
  const times = studies.map((s) => {
    const at = s.at ?? new Date();
    return { at, seenAt: s.seenAt ?? at };
  });
  return [
    studies.map((s) => s.studyUid),
    studies.map((s) => s.studyDate),
    studies.map((s) => s.fingerprint),
    studies.map((s) => s.contentHash),
    studies.map((s) => s.resourceId ?? null),
    studies.map((s) => s.versionId ?? null),
    times.map((t) => iso(t.at)),
    times.map((t) => iso(t.seenAt)),
    times.map((t) => t.at.getTime() - t.seenAt.getTime()),
  ];
}

export class PgStudies implements StudyStateRepository {
  constructor(private readonly pool: Pool) {}

  async get(sourceId: string, studyUid: string): Promise<StudyState | undefined> {
    const row = await one<StudyRow>(this.pool, 'SELECT * FROM studies WHERE source_id = $1 AND study_uid = $2', [
      sourceId,
      studyUid,
    ]);
    return row && toState(row);
  }

  async getMany(sourceId: string, studyUids: string[]): Promise<Map<string, StudyState>> {
    const found = await rows<StudyRow>(
      this.pool,
      'SELECT * FROM studies WHERE source_id = $1 AND study_uid = ANY($2::text[])',
      [sourceId, studyUids],
    );
    const byUid = new Map(found.map((r) => [r.study_uid, toState(r)]));
    // In the order asked, as the SQLite implementation answers.
    return new Map(studyUids.filter((u) => byUid.has(u)).map((u) => [u, byUid.get(u)!]));
  }

  async list(sourceId: string, status?: StudyStatus): Promise<StudyState[]> {
    // NULLS FIRST: SQLite sorts NULL before any value, PostgreSQL after.
    const found = status
      ? await rows<StudyRow>(
          this.pool,
          'SELECT * FROM studies WHERE source_id = $1 AND status = $2 ORDER BY study_date NULLS FIRST, study_uid',
          [sourceId, status],
        )
      : await rows<StudyRow>(
          this.pool,
          'SELECT * FROM studies WHERE source_id = $1 ORDER BY study_date NULLS FIRST, study_uid',
          [sourceId],
        );
    return found.map(toState);
  }

  async touchSeen(sourceId: string, studyUids: string[], at: Date = new Date()): Promise<void> {
    if (!studyUids.length) return;
    await this.pool.query(
      'UPDATE studies SET last_seen = $1, first_seen = COALESCE(first_seen, $1) WHERE source_id = $2 AND study_uid = ANY($3::text[])',
      [iso(at), sourceId, studyUids],
    );
  }

  async recordSynced(sourceId: string, studies: SyncedStudy[]): Promise<void> {
    if (!studies.length) return;
    await transaction(this.pool, async (c) => {
      for (const round of uniqueRounds(studies)) await c.query(RECORD_SYNCED_SQL, [sourceId, ...syncedColumns(round)]);
    });
  }

  /**
   * Each failure's new state depends on the previous one: the studies are locked (advisory locks cover
   * studies not stored yet, FOR UPDATE holds off writers that take no advisory lock) before they are read.
   */
  async recordFailures(sourceId: string, failures: StudyFailure[]): Promise<StudyState[]> {
    if (!failures.length) return [];
    return transaction(this.pool, async (c) => {
      const uids = failures.map((f) => f.studyUid);
      await lockKeys(
        c,
        'study',
        uids.map((u) => `${sourceId}|${u}`),
      );
      const prev = await this.lockedStates(c, sourceId, uids);
      const out: StudyState[] = [];
      for (const f of failures) {
        const state = await this.recordFailure(c, sourceId, f, prev.get(f.studyUid));
        prev.set(f.studyUid, state); // a study named twice in one batch counts from its first outcome
        out.push(state);
      }
      return out;
    });
  }

  private async lockedStates(c: PoolClient, sourceId: string, uids: string[]): Promise<Map<string, StudyState>> {
    const found = await rows<StudyRow>(
      c,
      'SELECT * FROM studies WHERE source_id = $1 AND study_uid = ANY($2::text[]) ORDER BY study_uid FOR UPDATE',
      [sourceId, uids],
    );
    return new Map(found.map((r) => [r.study_uid, toState(r)]));
  }

  private async recordFailure(
    c: PoolClient,
    sourceId: string,
    f: StudyFailure,
    prev: StudyState | undefined,
  ): Promise<StudyState> {
    const at = f.at ?? new Date();
    const o = failureOutcome(prev, f, at);
    const row = await one<StudyRow>(c, RECORD_FAILURE_SQL, [
      sourceId,
      f.studyUid,
      f.studyDate,
      o.status,
      f.fingerprint,
      o.lastSeen,
      o.attempts,
      o.nextRetry,
      o.error,
      iso(at),
      o.seenAt,
      o.reason,
    ]);
    return toState(row!);
  }

  async dueRetries(sourceId: string, now: Date = new Date()): Promise<StudyState[]> {
    const found = await rows<StudyRow>(
      this.pool,
      `SELECT * FROM studies WHERE source_id = $1 AND status = 'failing' AND (next_retry_at IS NULL OR next_retry_at <= $2) ORDER BY study_uid`,
      [sourceId, iso(now)],
    );
    return found.map(toState);
  }

  async recordQuarantine(
    sourceId: string,
    studyUid: string,
    q: { studyDate: string | null; fingerprint: string | null; reason: string; detail: string; at?: Date },
  ): Promise<StudyState> {
    const row = await one<StudyRow>(
      this.pool,
      `INSERT INTO studies (source_id, study_uid, study_date, status, fingerprint, last_seen, attempts, next_retry_at, last_error, reason, updated_at)
         VALUES ($1, $2, $3, 'quarantined', $4, $5, 0, NULL, $6, $7, $5)
         ON CONFLICT (source_id, study_uid) DO UPDATE SET
           study_date = COALESCE(EXCLUDED.study_date, studies.study_date), status = 'quarantined',
           fingerprint = COALESCE(EXCLUDED.fingerprint, studies.fingerprint), content_hash = NULL, last_seen = EXCLUDED.last_seen,
           attempts = 0, next_retry_at = NULL, last_error = EXCLUDED.last_error, reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at
         RETURNING *`,
      [sourceId, studyUid, q.studyDate, q.fingerprint, iso(q.at), q.detail.slice(0, 2000), q.reason],
    );
    return toState(row!);
  }

  async replay(sourceId: string, studyUid?: string): Promise<number> {
    // next_retry_at NULL: due on the very next run, whatever that run's clock says.
    const sql = `UPDATE studies SET status = 'failing', attempts = 0, next_retry_at = NULL, reason = NULL, updated_at = $1
                   WHERE source_id = $2 AND status IN ('dead', 'quarantined')`;
    const res = studyUid
      ? await this.pool.query(`${sql} AND study_uid = $3`, [iso(), sourceId, studyUid])
      : await this.pool.query(sql, [iso(), sourceId]);
    return res.rowCount ?? 0;
  }

  async markRemoved(sourceId: string, studyUid: string, reason: string): Promise<void> {
    await this.pool.query(
      `UPDATE studies SET status = 'removed', fingerprint = NULL, content_hash = NULL, last_error = $1, next_retry_at = NULL, updated_at = $2
         WHERE source_id = $3 AND study_uid = $4`,
      [reason, iso(), sourceId, studyUid],
    );
  }

  async forget(sourceId: string, studyUid: string): Promise<void> {
    await this.pool.query('DELETE FROM studies WHERE source_id = $1 AND study_uid = $2', [sourceId, studyUid]);
  }

  async present(sourceId: string): Promise<{ studyUid: string; studyDate: string | null }[]> {
    const found = await rows<{ study_uid: string; study_date: string | null }>(
      this.pool,
      `SELECT study_uid, study_date FROM studies WHERE source_id = $1 AND status != 'removed'`,
      [sourceId],
    );
    return found.map((r) => ({ studyUid: r.study_uid, studyDate: r.study_date }));
  }

  async unseenSince(sourceId: string, since: string): Promise<{ studyUid: string; studyDate: string | null }[]> {
    const found = await rows<{ study_uid: string; study_date: string | null }>(
      this.pool,
      `SELECT study_uid, study_date FROM studies WHERE source_id = $1 AND status != 'removed' AND (last_seen IS NULL OR last_seen < $2)`,
      [sourceId, since],
    );
    return found.map((r) => ({ studyUid: r.study_uid, studyDate: r.study_date }));
  }

  async earliestStudyDate(sourceId: string): Promise<string | undefined> {
    const row = await one<{ d: string | null }>(
      this.pool,
      `SELECT MIN(study_date) AS d FROM studies WHERE source_id = $1 AND study_date IS NOT NULL AND status != 'removed'`,
      [sourceId],
    );
    return row?.d ?? undefined;
  }

  async counts(sourceId: string): Promise<SourceCounts> {
    const byStatus = await rows<{ status: StudyStatus; n: number }>(
      this.pool,
      'SELECT status, COUNT(*) AS n FROM studies WHERE source_id = $1 GROUP BY status',
      [sourceId],
    );
    const resources = await one<{ n: number }>(
      this.pool,
      `SELECT COUNT(*) AS n FROM resources WHERE source_id = $1 AND resource_type = 'ImagingStudy'`,
      [sourceId],
    );
    return sourceCounts(byStatus, resources?.n ?? 0);
  }

  async knownSources(): Promise<string[]> {
    const found = await rows<{ source_id: string }>(
      this.pool,
      'SELECT source_id FROM studies UNION SELECT source_id FROM runs UNION SELECT source_id FROM resources WHERE source_id IS NOT NULL ORDER BY 1',
    );
    return found.map((r) => r.source_id);
  }

  async pendingSummary(sourceId: string): Promise<PendingSummary> {
    const counts = await one<{ failing: number; dead: number }>(
      this.pool,
      `SELECT COUNT(*) FILTER (WHERE status = 'failing') AS failing, COUNT(*) FILTER (WHERE status = 'dead') AS dead
         FROM studies WHERE source_id = $1 AND status IN ('failing', 'dead')`,
      [sourceId],
    );
    const oldest = await one<{ study_uid: string; since: string }>(
      this.pool,
      `SELECT study_uid, COALESCE(pending_since, first_seen, updated_at) AS since FROM studies
         WHERE source_id = $1 AND status IN ('failing', 'dead') ORDER BY since LIMIT 1`,
      [sourceId],
    );
    return {
      failing: counts?.failing ?? 0,
      dead: counts?.dead ?? 0,
      oldestSince: oldest?.since ?? null,
      oldestStudyUid: oldest?.study_uid ?? null,
    };
  }

  async freshnessSince(sourceId: string, since: Date): Promise<number[]> {
    const found = await rows<{ ms: number }>(
      this.pool,
      'SELECT freshness_ms AS ms FROM studies WHERE source_id = $1 AND synced_at >= $2 AND freshness_ms IS NOT NULL ORDER BY ms',
      [sourceId, iso(since)],
    );
    return found.map((r) => Math.max(0, r.ms));
  }

  async studiesPerDay(sourceId: string, from: string, to: string): Promise<Map<string, number>> {
    const found = await rows<{ d: string; n: number }>(
      this.pool,
      `SELECT study_date AS d, COUNT(*) AS n FROM studies
         WHERE source_id = $1 AND study_date BETWEEN $2 AND $3 AND status != 'removed' GROUP BY study_date`,
      [sourceId, from, to],
    );
    return new Map(found.map((r) => [r.d, r.n]));
  }
}
