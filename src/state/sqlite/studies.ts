/** Per-study sync state in the embedded store. */
import type Database from 'better-sqlite3';
import type { StudyStateRepository } from '../repositories';
import { failureOutcome, iso, sourceCounts, toState, type StudyRow } from '../rows';
import type { PendingSummary, SourceCounts, StudyFailure, StudyState, StudyStatus, SyncedStudy } from '../types';
import { statement } from './statements';

// Freshness: from when this state was first seen pending (or this sighting) to now.
const RECORD_SYNCED_SQL = `INSERT INTO studies (source_id, study_uid, study_date, status, fingerprint, content_hash, resource_id, version_id, last_seen,
                              attempts, next_retry_at, last_error, created_by_bridge, updated_at, first_seen, pending_since, synced_at, freshness_ms)
         VALUES (@sourceId, @studyUid, @studyDate, 'synced', @fingerprint, @contentHash, @resourceId, @versionId, @at, 0, NULL, NULL,
                 COALESCE((SELECT created_by_bridge FROM resources WHERE resource_type = 'ImagingStudy' AND id = @resourceId), 1), @at,
                 @seenAt, NULL, @at, CAST(ROUND((julianday(@at) - julianday(@seenAt)) * 86400000) AS INTEGER))
         ON CONFLICT (source_id, study_uid) DO UPDATE SET
           study_date = excluded.study_date, status = 'synced', fingerprint = excluded.fingerprint, content_hash = excluded.content_hash,
           resource_id = COALESCE(excluded.resource_id, studies.resource_id), version_id = COALESCE(excluded.version_id, studies.version_id),
           last_seen = excluded.last_seen, attempts = 0, next_retry_at = NULL, last_error = NULL, reason = NULL,
           created_by_bridge = excluded.created_by_bridge, updated_at = excluded.updated_at,
           first_seen = COALESCE(studies.first_seen, excluded.first_seen), pending_since = NULL, synced_at = excluded.synced_at,
           freshness_ms = CAST(ROUND((julianday(excluded.synced_at) - julianday(COALESCE(studies.pending_since, excluded.first_seen))) * 86400000) AS INTEGER)`;

const RECORD_FAILURE_SQL = `INSERT INTO studies (source_id, study_uid, study_date, status, fingerprint, last_seen, attempts, next_retry_at, last_error, updated_at,
                              first_seen, pending_since, reason)
           VALUES (@sourceId, @studyUid, @studyDate, @status, @fingerprint, @lastSeen, @attempts, @nextRetry, @error, @at, @seenAt, @seenAt, @reason)
           ON CONFLICT (source_id, study_uid) DO UPDATE SET
             study_date = COALESCE(excluded.study_date, studies.study_date), status = excluded.status,
             fingerprint = COALESCE(excluded.fingerprint, studies.fingerprint), last_seen = COALESCE(excluded.last_seen, studies.last_seen),
             attempts = excluded.attempts, next_retry_at = excluded.next_retry_at, last_error = excluded.last_error,
             reason = excluded.reason, updated_at = excluded.updated_at, first_seen = COALESCE(studies.first_seen, excluded.first_seen),
             pending_since = COALESCE(studies.pending_since, excluded.pending_since)`;

export class SqliteStudies implements StudyStateRepository {
  constructor(private readonly db: Database.Database) {}

  private getNow(sourceId: string, studyUid: string): StudyState | undefined {
    const row = statement(this.db, 'SELECT * FROM studies WHERE source_id = ? AND study_uid = ?').get(
      sourceId,
      studyUid,
    ) as StudyRow | undefined;
    return row && toState(row);
  }

  async get(sourceId: string, studyUid: string): Promise<StudyState | undefined> {
    return this.getNow(sourceId, studyUid);
  }

  async getMany(sourceId: string, studyUids: string[]): Promise<Map<string, StudyState>> {
    const out = new Map<string, StudyState>();
    for (const uid of studyUids) {
      const state = this.getNow(sourceId, uid);
      if (state) out.set(uid, state);
    }
    return out;
  }

  async list(sourceId: string, status?: StudyStatus): Promise<StudyState[]> {
    const rows = status
      ? statement(
          this.db,
          'SELECT * FROM studies WHERE source_id = ? AND status = ? ORDER BY study_date, study_uid',
        ).all(sourceId, status)
      : statement(this.db, 'SELECT * FROM studies WHERE source_id = ? ORDER BY study_date, study_uid').all(sourceId);
    return (rows as StudyRow[]).map(toState);
  }

  async touchSeen(sourceId: string, studyUids: string[], at: Date = new Date()): Promise<void> {
    const stmt = statement(
      this.db,
      'UPDATE studies SET last_seen = @at, first_seen = COALESCE(first_seen, @at) WHERE source_id = @sourceId AND study_uid = @uid',
    );
    const when = iso(at);
    this.db.transaction(() => studyUids.forEach((uid) => stmt.run({ at: when, sourceId, uid })))();
  }

  async recordSynced(sourceId: string, studies: SyncedStudy[]): Promise<void> {
    const stmt = statement(this.db, RECORD_SYNCED_SQL);
    this.db.transaction(() => {
      for (const s of studies)
        stmt.run({
          sourceId,
          studyUid: s.studyUid,
          studyDate: s.studyDate,
          fingerprint: s.fingerprint,
          contentHash: s.contentHash,
          resourceId: s.resourceId ?? null,
          versionId: s.versionId ?? null,
          at: iso(s.at),
          seenAt: iso(s.seenAt ?? s.at),
        });
    })();
  }

  async recordFailures(sourceId: string, failures: StudyFailure[]): Promise<StudyState[]> {
    const stmt = statement(this.db, RECORD_FAILURE_SQL);
    return this.db.transaction(() =>
      failures.map((f) => {
        const at = f.at ?? new Date();
        const o = failureOutcome(this.getNow(sourceId, f.studyUid), f, at);
        stmt.run({
          sourceId,
          studyUid: f.studyUid,
          studyDate: f.studyDate,
          fingerprint: f.fingerprint,
          at: iso(at),
          status: o.status,
          attempts: o.attempts,
          nextRetry: o.nextRetry,
          lastSeen: o.lastSeen,
          seenAt: o.seenAt,
          error: o.error,
          reason: o.reason,
        });
        return this.getNow(sourceId, f.studyUid)!;
      }),
    )();
  }

  async dueRetries(sourceId: string, now: Date = new Date()): Promise<StudyState[]> {
    return (
      statement(
        this.db,
        `SELECT * FROM studies WHERE source_id = ? AND status = 'failing' AND (next_retry_at IS NULL OR next_retry_at <= ?) ORDER BY study_uid`,
      ).all(sourceId, iso(now)) as StudyRow[]
    ).map(toState);
  }

  async recordQuarantine(
    sourceId: string,
    studyUid: string,
    q: { studyDate: string | null; fingerprint: string | null; reason: string; detail: string; at?: Date },
  ): Promise<StudyState> {
    const at = iso(q.at);
    statement(
      this.db,
      `INSERT INTO studies (source_id, study_uid, study_date, status, fingerprint, last_seen, attempts, next_retry_at, last_error, reason, updated_at)
         VALUES (@sourceId, @studyUid, @studyDate, 'quarantined', @fingerprint, @at, 0, NULL, @detail, @reason, @at)
         ON CONFLICT (source_id, study_uid) DO UPDATE SET
           study_date = COALESCE(excluded.study_date, studies.study_date), status = 'quarantined',
           fingerprint = COALESCE(excluded.fingerprint, studies.fingerprint), content_hash = NULL, last_seen = excluded.last_seen,
           attempts = 0, next_retry_at = NULL, last_error = excluded.last_error, reason = excluded.reason, updated_at = excluded.updated_at`,
    ).run({
      sourceId,
      studyUid,
      studyDate: q.studyDate,
      fingerprint: q.fingerprint,
      at,
      detail: q.detail.slice(0, 2000),
      reason: q.reason,
    });
    return this.getNow(sourceId, studyUid)!;
  }

  async replay(sourceId: string, studyUid?: string): Promise<number> {
    // next_retry_at NULL: due on the very next run, whatever that run's clock says.
    const sql = `UPDATE studies SET status = 'failing', attempts = 0, next_retry_at = NULL, reason = NULL, updated_at = ? WHERE source_id = ? AND status IN ('dead', 'quarantined')`;
    const res = studyUid
      ? statement(this.db, `${sql} AND study_uid = ?`).run(iso(), sourceId, studyUid)
      : statement(this.db, sql).run(iso(), sourceId);
    return res.changes;
  }

  async markRemoved(sourceId: string, studyUid: string, reason: string): Promise<void> {
    statement(
      this.db,
      `UPDATE studies SET status = 'removed', fingerprint = NULL, content_hash = NULL, last_error = ?, next_retry_at = NULL, updated_at = ? WHERE source_id = ? AND study_uid = ?`,
    ).run(reason, iso(), sourceId, studyUid);
  }

  async forget(sourceId: string, studyUid: string): Promise<void> {
    statement(this.db, 'DELETE FROM studies WHERE source_id = ? AND study_uid = ?').run(sourceId, studyUid);
  }

  async present(sourceId: string): Promise<{ studyUid: string; studyDate: string | null }[]> {
    const rows = statement(
      this.db,
      `SELECT study_uid, study_date FROM studies WHERE source_id = ? AND status != 'removed'`,
    ).all(sourceId) as { study_uid: string; study_date: string | null }[];
    return rows.map((r) => ({ studyUid: r.study_uid, studyDate: r.study_date }));
  }

  async unseenSince(sourceId: string, since: string): Promise<{ studyUid: string; studyDate: string | null }[]> {
    const rows = statement(
      this.db,
      `SELECT study_uid, study_date FROM studies WHERE source_id = ? AND status != 'removed' AND (last_seen IS NULL OR last_seen < ?)`,
    ).all(sourceId, since) as { study_uid: string; study_date: string | null }[];
    return rows.map((r) => ({ studyUid: r.study_uid, studyDate: r.study_date }));
  }

  async earliestStudyDate(sourceId: string): Promise<string | undefined> {
    const row = statement(
      this.db,
      `SELECT MIN(study_date) AS d FROM studies WHERE source_id = ? AND study_date IS NOT NULL AND status != 'removed'`,
    ).get(sourceId) as { d: string | null };
    return row.d ?? undefined;
  }

  async counts(sourceId: string): Promise<SourceCounts> {
    const byStatus = statement(
      this.db,
      'SELECT status, COUNT(*) AS n FROM studies WHERE source_id = ? GROUP BY status',
    ).all(sourceId) as { status: StudyStatus; n: number }[];
    const resources = (
      statement(
        this.db,
        `SELECT COUNT(*) AS n FROM resources WHERE source_id = ? AND resource_type = 'ImagingStudy'`,
      ).get(sourceId) as { n: number }
    ).n;
    return sourceCounts(byStatus, resources);
  }

  async knownSources(): Promise<string[]> {
    return (
      statement(
        this.db,
        'SELECT source_id FROM studies UNION SELECT source_id FROM runs UNION SELECT source_id FROM resources WHERE source_id IS NOT NULL ORDER BY 1',
      ).all() as { source_id: string }[]
    ).map((r) => r.source_id);
  }

  async pendingSummary(sourceId: string): Promise<PendingSummary> {
    const counts = statement(
      this.db,
      `SELECT SUM(status = 'failing') AS failing, SUM(status = 'dead') AS dead FROM studies WHERE source_id = ? AND status IN ('failing', 'dead')`,
    ).get(sourceId) as { failing: number | null; dead: number | null };
    const oldest = statement(
      this.db,
      `SELECT study_uid, COALESCE(pending_since, first_seen, updated_at) AS since FROM studies
         WHERE source_id = ? AND status IN ('failing', 'dead') ORDER BY since LIMIT 1`,
    ).get(sourceId) as { study_uid: string; since: string } | undefined;
    return {
      failing: counts.failing ?? 0,
      dead: counts.dead ?? 0,
      oldestSince: oldest?.since ?? null,
      oldestStudyUid: oldest?.study_uid ?? null,
    };
  }

  async freshnessSince(sourceId: string, since: Date): Promise<number[]> {
    return (
      statement(
        this.db,
        'SELECT freshness_ms AS ms FROM studies WHERE source_id = ? AND synced_at >= ? AND freshness_ms IS NOT NULL ORDER BY ms',
      ).all(sourceId, iso(since)) as { ms: number }[]
    ).map((r) => Math.max(0, r.ms));
  }

  async studiesPerDay(sourceId: string, from: string, to: string): Promise<Map<string, number>> {
    const rows = statement(
      this.db,
      `SELECT study_date AS d, COUNT(*) AS n FROM studies WHERE source_id = ? AND study_date BETWEEN ? AND ? AND status != 'removed' GROUP BY study_date`,
    ).all(sourceId, from, to) as { d: string; n: number }[];
    return new Map(rows.map((r) => [r.d, r.n]));
  }
}
