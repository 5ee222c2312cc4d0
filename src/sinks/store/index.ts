/**
 * The embedded store (better-sqlite3, WAL): per-source checkpoints, per-study sync state, run history,
 * and the synced FHIR resources themselves, so a site without a FHIR server can still sync and look
 * studies up. Synchronous by design: each call is a short local transaction.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import type { ImagingStudy, Resource } from 'fhir/r4';
import { migrate, prepareConnection } from './migrations';
import { statement } from './statements';
import { filterSql, indexStudy, studyIndexRow, unindexStudy, type StudyIndexFilter } from './studyIndex';

export type { StudyIndexFilter } from './studyIndex';

/** `quarantined`: never written as it stands (see `reason`), until an operator replays it. */
export type StudyStatus = 'synced' | 'failing' | 'dead' | 'removed' | 'quarantined';

export interface StudyState {
  sourceId: string;
  studyUid: string;
  studyDate: string | null;
  status: StudyStatus;
  fingerprint: string | null;
  contentHash: string | null;
  resourceId: string | null;
  versionId: string | null;
  lastSeen: string | null;
  attempts: number;
  nextRetryAt: string | null;
  lastError: string | null;
  /** Why a quarantined study is held ('study-uid-conflict'); null otherwise. */
  reason: string | null;
  dead: boolean;
  createdByBridge: boolean;
  updatedAt: string;
  /** First time a listing (or a feed) saw the study. */
  firstSeen?: string | null;
  /** When its current unsynced state was first seen; null once synced. */
  pendingSince?: string | null;
  syncedAt?: string | null;
}

/** `feed`: studies a change feed reported (src/sync/feed.ts); `sweep`: a full-range sweep (src/sync/sweep.ts). */
export type RunKind = 'poll' | 'backfill' | 'reconcile' | 'feed' | 'sweep';

/** One full-range sweep of a source: its progress (resumable) and, once complete, its coverage. */
export interface SweepRecord {
  id: number;
  sourceId: string;
  startedAt: string;
  /** Last StudyDate whose window is listed and settled; undefined before the first. */
  throughDate: string | null;
  undatedDone: boolean;
  /** Studies the PACS reported so far. */
  listed: number;
  completedAt: string | null;
  /** Of the listed studies, how many were synced, failing and dead when the sweep completed. */
  synced: number | null;
  failing: number | null;
  dead: number | null;
  vanished: number | null;
  /** Searches the PACS still truncated after narrowing: the listing may be incomplete. */
  unresolved: number | null;
}

/** Studies waiting to be written (failing or dead) and the oldest of them. */
export interface PendingSummary {
  failing: number;
  dead: number;
  /** The earliest `pending_since` among them (ISO), or null. */
  oldestSince: string | null;
  oldestStudyUid: string | null;
}
export type RunStatus = 'running' | 'ok' | 'partial' | 'failed' | 'interrupted';

export interface RunCounts {
  windows?: number;
  found?: number;
  fetched?: number;
  written?: number;
  unchanged?: number;
  skipped?: number;
  failed?: number;
  dead?: number;
  removed?: number;
  /** Studies newly quarantined (a Study UID under two patients). */
  quarantined?: number;
  [key: string]: number | undefined;
}

export interface RunRecord {
  runId: string;
  sourceId: string;
  kind: RunKind;
  startedAt: string;
  endedAt: string | null;
  status: RunStatus;
  counts: RunCounts;
  error: string | null;
}

export interface SourceCounts {
  studies: number;
  synced: number;
  failing: number;
  dead: number;
  removed: number;
  quarantined: number;
  resources: number;
}

export interface StoredResourceMeta {
  resourceType: string;
  id: string;
  sourceId: string | null;
  studyUid: string | null;
  versionId: number;
  contentHash: string;
  createdByBridge: boolean;
  lastUpdated: string;
}

export interface PutResult {
  versionId: string;
  unchanged: boolean;
  created: boolean;
  createdByBridge: boolean;
}

interface StudyRow {
  source_id: string;
  study_uid: string;
  study_date: string | null;
  status: StudyStatus;
  fingerprint: string | null;
  content_hash: string | null;
  resource_id: string | null;
  version_id: string | null;
  last_seen: string | null;
  attempts: number;
  next_retry_at: string | null;
  last_error: string | null;
  reason: string | null;
  created_by_bridge: number;
  updated_at: string;
  first_seen: string | null;
  pending_since: string | null;
  synced_at: string | null;
}

interface SweepRow {
  id: number;
  source_id: string;
  started_at: string;
  through_date: string | null;
  undated_done: number;
  listed: number;
  completed_at: string | null;
  synced: number | null;
  failing: number | null;
  dead: number | null;
  vanished: number | null;
  unresolved: number | null;
}

function toSweep(r: SweepRow): SweepRecord {
  return {
    id: r.id,
    sourceId: r.source_id,
    startedAt: r.started_at,
    throughDate: r.through_date,
    undatedDone: r.undated_done === 1,
    listed: r.listed,
    completedAt: r.completed_at,
    synced: r.synced,
    failing: r.failing,
    dead: r.dead,
    vanished: r.vanished,
    unresolved: r.unresolved,
  };
}

function toState(r: StudyRow): StudyState {
  return {
    sourceId: r.source_id,
    studyUid: r.study_uid,
    studyDate: r.study_date,
    status: r.status,
    fingerprint: r.fingerprint,
    contentHash: r.content_hash,
    resourceId: r.resource_id,
    versionId: r.version_id,
    lastSeen: r.last_seen,
    attempts: r.attempts,
    nextRetryAt: r.next_retry_at,
    lastError: r.last_error,
    reason: r.reason ?? null,
    dead: r.status === 'dead',
    createdByBridge: r.created_by_bridge === 1,
    updatedAt: r.updated_at,
    firstSeen: r.first_seen,
    pendingSince: r.pending_since,
    syncedAt: r.synced_at,
  };
}

const iso = (d: Date = new Date()) => d.toISOString();

export class Store {
  readonly db: Database.Database;
  readonly schemaVersion: number;

  constructor(readonly file: string) {
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    this.db = new Database(file);
    prepareConnection(this.db);
    this.schemaVersion = migrate(this.db);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Runs fn in one transaction (nested calls join the outer one). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  // ── checkpoints ───────────────────────────────────────────────────────────

  getCheckpoint(sourceId: string, name = 'poll'): string | undefined {
    const row = statement(this.db, 'SELECT through_date FROM checkpoints WHERE source_id = ? AND name = ?').get(
      sourceId,
      name,
    ) as { through_date: string } | undefined;
    return row?.through_date;
  }

  /** Moves a checkpoint forward only: a late or repeated window never moves it back. */
  advanceCheckpoint(sourceId: string, throughDate: string, name = 'poll'): void {
    statement(
      this.db,
      `INSERT INTO checkpoints (source_id, name, through_date, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (source_id, name) DO UPDATE SET through_date = excluded.through_date, updated_at = excluded.updated_at
         WHERE excluded.through_date > checkpoints.through_date`,
    ).run(sourceId, name, throughDate, iso());
  }

  listCheckpoints(sourceId: string): { name: string; throughDate: string; updatedAt: string }[] {
    return (
      statement(
        this.db,
        'SELECT name, through_date, updated_at FROM checkpoints WHERE source_id = ? ORDER BY name',
      ).all(sourceId) as { name: string; through_date: string; updated_at: string }[]
    ).map((r) => ({
      name: r.name,
      throughDate: r.through_date,
      updatedAt: r.updated_at,
    }));
  }

  // ── per-study state ──────────────────────────────────────────────────────

  getStudy(sourceId: string, studyUid: string): StudyState | undefined {
    const row = statement(this.db, 'SELECT * FROM studies WHERE source_id = ? AND study_uid = ?').get(
      sourceId,
      studyUid,
    ) as StudyRow | undefined;
    return row && toState(row);
  }

  getStudies(sourceId: string, studyUids: string[]): Map<string, StudyState> {
    const out = new Map<string, StudyState>();
    const stmt = statement(this.db, 'SELECT * FROM studies WHERE source_id = ? AND study_uid = ?');
    for (const uid of studyUids) {
      const row = stmt.get(sourceId, uid) as StudyRow | undefined;
      if (row) out.set(uid, toState(row));
    }
    return out;
  }

  listStudies(sourceId: string, status?: StudyStatus): StudyState[] {
    const rows = status
      ? statement(
          this.db,
          'SELECT * FROM studies WHERE source_id = ? AND status = ? ORDER BY study_date, study_uid',
        ).all(sourceId, status)
      : statement(this.db, 'SELECT * FROM studies WHERE source_id = ? ORDER BY study_date, study_uid').all(sourceId);
    return (rows as StudyRow[]).map(toState);
  }

  /** Marks studies as seen on the PACS now (existing rows only). */
  touchSeen(sourceId: string, studyUids: string[], at: Date = new Date()): void {
    const stmt = statement(
      this.db,
      'UPDATE studies SET last_seen = @at, first_seen = COALESCE(first_seen, @at) WHERE source_id = @sourceId AND study_uid = @uid',
    );
    const when = iso(at);
    this.transaction(() => studyUids.forEach((uid) => stmt.run({ at: when, sourceId, uid })));
  }

  /** A study written (or found unchanged) by every sink: resets failures. */
  recordSynced(
    sourceId: string,
    studyUid: string,
    s: {
      studyDate: string | null;
      fingerprint: string;
      contentHash: string;
      resourceId?: string | null;
      versionId?: string | null;
      at?: Date;
      /** When the listing that led to this write saw the study (defaults to `at`). */
      seenAt?: Date;
    },
  ): void {
    const at = iso(s.at);
    // Freshness: from when this state was first seen pending (or this sighting) to now.
    statement(
      this.db,
      `INSERT INTO studies (source_id, study_uid, study_date, status, fingerprint, content_hash, resource_id, version_id, last_seen,
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
           freshness_ms = CAST(ROUND((julianday(excluded.synced_at) - julianday(COALESCE(studies.pending_since, excluded.first_seen))) * 86400000) AS INTEGER)`,
    ).run({
      sourceId,
      studyUid,
      studyDate: s.studyDate,
      fingerprint: s.fingerprint,
      contentHash: s.contentHash,
      resourceId: s.resourceId ?? null,
      versionId: s.versionId ?? null,
      at,
      seenAt: iso(s.seenAt ?? s.at),
    });
  }

  /**
   * A study that failed. `countAttempt` is false for failures that are not the study's fault (the PACS
   * unreachable): it is retried next run without moving towards the dead-letter limit.
   */
  recordFailure(
    sourceId: string,
    studyUid: string,
    f: {
      studyDate: string | null;
      fingerprint: string | null;
      error: string;
      countAttempt: boolean;
      maxAttempts: number;
      retryDelaySeconds: (attempts: number) => number;
      at?: Date;
      /** When the listing that led to this attempt saw the study (defaults to `at`). */
      seenAt?: Date;
      /** False when the study was not seen on the PACS (looked up and not found): last_seen stays. */
      seen?: boolean;
    },
  ): StudyState {
    const at = f.at ?? new Date();
    return this.transaction(() => {
      const prev = this.getStudy(sourceId, studyUid);
      const attempts =
        (prev?.status === 'failing' || prev?.status === 'dead' ? prev.attempts : 0) + (f.countAttempt ? 1 : 0);
      const dead = attempts >= f.maxAttempts;
      const nextRetry = dead
        ? null
        : iso(new Date(at.getTime() + (f.countAttempt ? f.retryDelaySeconds(attempts) : 0) * 1000));
      statement(
        this.db,
        `INSERT INTO studies (source_id, study_uid, study_date, status, fingerprint, last_seen, attempts, next_retry_at, last_error, updated_at,
                              first_seen, pending_since)
           VALUES (@sourceId, @studyUid, @studyDate, @status, @fingerprint, @lastSeen, @attempts, @nextRetry, @error, @at, @seenAt, @seenAt)
           ON CONFLICT (source_id, study_uid) DO UPDATE SET
             study_date = COALESCE(excluded.study_date, studies.study_date), status = excluded.status,
             fingerprint = COALESCE(excluded.fingerprint, studies.fingerprint), last_seen = COALESCE(excluded.last_seen, studies.last_seen),
             attempts = excluded.attempts, next_retry_at = excluded.next_retry_at, last_error = excluded.last_error,
             reason = NULL, updated_at = excluded.updated_at, first_seen = COALESCE(studies.first_seen, excluded.first_seen),
             pending_since = COALESCE(studies.pending_since, excluded.pending_since)`,
      ).run({
        lastSeen: f.seen === false ? null : iso(at),
        seenAt: iso(f.seenAt ?? at),
        sourceId,
        studyUid,
        studyDate: f.studyDate,
        status: dead ? 'dead' : 'failing',
        fingerprint: f.fingerprint,
        at: iso(at),
        attempts,
        nextRetry,
        error: f.error.slice(0, 2000),
      });
      return this.getStudy(sourceId, studyUid)!;
    });
  }

  /** Failing studies whose retry is due (at or before `now`). */
  dueRetries(sourceId: string, now: Date = new Date()): StudyState[] {
    return (
      statement(
        this.db,
        `SELECT * FROM studies WHERE source_id = ? AND status = 'failing' AND (next_retry_at IS NULL OR next_retry_at <= ?) ORDER BY study_uid`,
      ).all(sourceId, iso(now)) as StudyRow[]
    ).map(toState);
  }

  failingStudies(sourceId: string): StudyState[] {
    return this.listStudies(sourceId, 'failing');
  }

  deadLetters(sourceId: string): StudyState[] {
    return this.listStudies(sourceId, 'dead');
  }

  /**
   * Quarantines a study: it is not written until replayed. Keeps what was written before (resource_id);
   * the content hash is cleared so a replay writes the study again whatever it maps to.
   */
  recordQuarantine(
    sourceId: string,
    studyUid: string,
    q: { studyDate: string | null; fingerprint: string | null; reason: string; detail: string; at?: Date },
  ): StudyState {
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
    return this.getStudy(sourceId, studyUid)!;
  }

  quarantinedStudies(sourceId: string): StudyState[] {
    return this.listStudies(sourceId, 'quarantined');
  }

  /**
   * Re-queues dead letters and quarantined studies (one, or all of a source): attempts reset, due now.
   * A quarantined study is checked again on that run. Returns how many.
   */
  replay(sourceId: string, studyUid?: string): number {
    // next_retry_at NULL: due on the very next run, whatever that run's clock says.
    const sql = `UPDATE studies SET status = 'failing', attempts = 0, next_retry_at = NULL, reason = NULL, updated_at = ? WHERE source_id = ? AND status IN ('dead', 'quarantined')`;
    const res = studyUid
      ? statement(this.db, `${sql} AND study_uid = ?`).run(iso(), sourceId, studyUid)
      : statement(this.db, sql).run(iso(), sourceId);
    return res.changes;
  }

  /** After a reconcile removed or marked a vanished study. */
  markRemoved(sourceId: string, studyUid: string, reason: string): void {
    statement(
      this.db,
      `UPDATE studies SET status = 'removed', fingerprint = NULL, content_hash = NULL, last_error = ?, next_retry_at = NULL, updated_at = ? WHERE source_id = ? AND study_uid = ?`,
    ).run(reason, iso(), sourceId, studyUid);
  }

  forgetStudy(sourceId: string, studyUid: string): void {
    statement(this.db, 'DELETE FROM studies WHERE source_id = ? AND study_uid = ?').run(sourceId, studyUid);
  }

  /** Studies the store believes are on the PACS (everything but removed). */
  presentStudies(sourceId: string): { studyUid: string; studyDate: string | null }[] {
    return (
      statement(this.db, `SELECT study_uid, study_date FROM studies WHERE source_id = ? AND status != 'removed'`).all(
        sourceId,
      ) as { study_uid: string; study_date: string | null }[]
    ).map((r) => ({
      studyUid: r.study_uid,
      studyDate: r.study_date,
    }));
  }

  earliestStudyDate(sourceId: string): string | undefined {
    const row = statement(
      this.db,
      `SELECT MIN(study_date) AS d FROM studies WHERE source_id = ? AND study_date IS NOT NULL AND status != 'removed'`,
    ).get(sourceId) as { d: string | null };
    return row.d ?? undefined;
  }

  counts(sourceId: string): SourceCounts {
    const byStatus = statement(
      this.db,
      'SELECT status, COUNT(*) AS n FROM studies WHERE source_id = ? GROUP BY status',
    ).all(sourceId) as { status: StudyStatus; n: number }[];
    const n = (s: StudyStatus) => byStatus.find((r) => r.status === s)?.n ?? 0;
    const resources = (
      statement(
        this.db,
        `SELECT COUNT(*) AS n FROM resources WHERE source_id = ? AND resource_type = 'ImagingStudy'`,
      ).get(sourceId) as { n: number }
    ).n;
    return {
      studies: byStatus.reduce((a, r) => a + r.n, 0),
      synced: n('synced'),
      failing: n('failing'),
      dead: n('dead'),
      removed: n('removed'),
      quarantined: n('quarantined'),
      resources,
    };
  }

  /** Source ids that have any state, runs or resources. */
  knownSources(): string[] {
    return (
      statement(
        this.db,
        'SELECT source_id FROM studies UNION SELECT source_id FROM runs UNION SELECT source_id FROM resources WHERE source_id IS NOT NULL ORDER BY 1',
      ).all() as { source_id: string }[]
    ).map((r) => r.source_id);
  }

  // ── sweeps and coverage ──────────────────────────────────────────────────

  /** The source's unfinished sweep, to resume; otherwise a new one starting `at`. */
  openSweep(sourceId: string, at: Date = new Date()): SweepRecord {
    return this.transaction(() => {
      const open = statement(
        this.db,
        'SELECT * FROM sweeps WHERE source_id = ? AND completed_at IS NULL ORDER BY id DESC LIMIT 1',
      ).get(sourceId) as SweepRow | undefined;
      if (open) return toSweep(open);
      const id = statement(this.db, 'INSERT INTO sweeps (source_id, started_at) VALUES (?, ?)').run(sourceId, iso(at))
        .lastInsertRowid as number;
      return toSweep(statement(this.db, 'SELECT * FROM sweeps WHERE id = ?').get(id) as SweepRow);
    });
  }

  /** Records a sweep's progress: windows through `throughDate` settled, `listed` more studies reported. */
  advanceSweep(id: number, p: { throughDate?: string; listed: number; undatedDone?: boolean }): void {
    statement(
      this.db,
      `UPDATE sweeps SET through_date = COALESCE(?, through_date), listed = listed + ?, undated_done = MAX(undated_done, ?) WHERE id = ?`,
    ).run(p.throughDate ?? null, p.listed, p.undatedDone ? 1 : 0, id);
  }

  /**
   * Studies the store believes are on the PACS (not removed) that no listing has seen since `since`:
   * after a complete sweep starting then, the ones that vanished.
   */
  unseenSince(sourceId: string, since: string): { studyUid: string; studyDate: string | null }[] {
    return (
      statement(
        this.db,
        `SELECT study_uid, study_date FROM studies WHERE source_id = ? AND status != 'removed' AND (last_seen IS NULL OR last_seen < ?)`,
      ).all(sourceId, since) as { study_uid: string; study_date: string | null }[]
    ).map((r) => ({ studyUid: r.study_uid, studyDate: r.study_date }));
  }

  /** Closes a sweep with its coverage: of the studies seen since it started, how many are synced, failing, dead. */
  completeSweep(id: number, r: { vanished: number; unresolved: number; at?: Date }): SweepRecord {
    return this.transaction(() => {
      const sweep = toSweep(statement(this.db, 'SELECT * FROM sweeps WHERE id = ?').get(id) as SweepRow);
      const byStatus = statement(
        this.db,
        `SELECT status, COUNT(*) AS n FROM studies WHERE source_id = ? AND last_seen >= ? GROUP BY status`,
      ).all(sweep.sourceId, sweep.startedAt) as { status: StudyStatus; n: number }[];
      const n = (s: StudyStatus) => byStatus.find((b) => b.status === s)?.n ?? 0;
      statement(
        this.db,
        'UPDATE sweeps SET completed_at = ?, synced = ?, failing = ?, dead = ?, vanished = ?, unresolved = ? WHERE id = ?',
      ).run(iso(r.at), n('synced'), n('failing'), n('dead'), r.vanished, r.unresolved, id);
      return toSweep(statement(this.db, 'SELECT * FROM sweeps WHERE id = ?').get(id) as SweepRow);
    });
  }

  /** The newest completed sweep of a source. */
  lastCompleteSweep(sourceId: string): SweepRecord | undefined {
    const row = statement(
      this.db,
      'SELECT * FROM sweeps WHERE source_id = ? AND completed_at IS NOT NULL ORDER BY id DESC LIMIT 1',
    ).get(sourceId) as SweepRow | undefined;
    return row && toSweep(row);
  }

  /** The sweep in progress (or interrupted, to be resumed), if any. */
  openSweepOf(sourceId: string): SweepRecord | undefined {
    const row = statement(
      this.db,
      'SELECT * FROM sweeps WHERE source_id = ? AND completed_at IS NULL ORDER BY id DESC LIMIT 1',
    ).get(sourceId) as SweepRow | undefined;
    return row && toSweep(row);
  }

  /** Studies not yet written (failing, dead) and the one waiting longest. */
  pendingSummary(sourceId: string): PendingSummary {
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

  /** Freshness (ms from sighting to write) of the studies settled at or after `since`, ascending. */
  freshnessSince(sourceId: string, since: Date): number[] {
    return (
      statement(
        this.db,
        'SELECT freshness_ms AS ms FROM studies WHERE source_id = ? AND synced_at >= ? AND freshness_ms IS NOT NULL ORDER BY ms',
      ).all(sourceId, iso(since)) as { ms: number }[]
    ).map((r) => Math.max(0, r.ms));
  }

  /** Studies per StudyDate in [from, to] the store knows (any state but removed): density for window planning. */
  studiesPerDay(sourceId: string, from: string, to: string): Map<string, number> {
    const rows = statement(
      this.db,
      `SELECT study_date AS d, COUNT(*) AS n FROM studies WHERE source_id = ? AND study_date BETWEEN ? AND ? AND status != 'removed' GROUP BY study_date`,
    ).all(sourceId, from, to) as { d: string; n: number }[];
    return new Map(rows.map((r) => [r.d, r.n]));
  }

  // ── run leases ───────────────────────────────────────────────────────────

  /**
   * Takes the source's run lease for `owner` unless another owner holds an unexpired one that
   * `isAbandoned` does not declare dead. Returns the current holder when refused.
   */
  acquireLease(
    sourceId: string,
    owner: string,
    ttlMs: number,
    isAbandoned: (holder: string) => boolean = () => false,
    at: Date = new Date(),
  ): { ok: true } | { ok: false; holder: string } {
    return this.db
      .transaction(() => {
        const row = statement(this.db, 'SELECT owner, expires_at FROM source_leases WHERE source_id = ?').get(
          sourceId,
        ) as { owner: string; expires_at: string } | undefined;
        if (row && row.owner !== owner && row.expires_at > iso(at) && !isAbandoned(row.owner))
          return { ok: false as const, holder: row.owner };
        statement(
          this.db,
          `INSERT INTO source_leases (source_id, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (source_id) DO UPDATE SET owner = excluded.owner, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at`,
        ).run(sourceId, owner, iso(at), iso(new Date(at.getTime() + ttlMs)));
        return { ok: true as const };
      })
      .immediate();
  }

  renewLease(sourceId: string, owner: string, ttlMs: number, at: Date = new Date()): void {
    statement(this.db, 'UPDATE source_leases SET expires_at = ? WHERE source_id = ? AND owner = ?').run(
      iso(new Date(at.getTime() + ttlMs)),
      sourceId,
      owner,
    );
  }

  releaseLease(sourceId: string, owner: string): void {
    statement(this.db, 'DELETE FROM source_leases WHERE source_id = ? AND owner = ?').run(sourceId, owner);
  }

  // ── run history ──────────────────────────────────────────────────────────

  startRun(sourceId: string, kind: RunKind, at: Date = new Date()): string {
    const runId = randomUUID();
    statement(
      this.db,
      `INSERT INTO runs (run_id, source_id, kind, started_at, status) VALUES (?, ?, ?, ?, 'running')`,
    ).run(runId, sourceId, kind, iso(at));
    return runId;
  }

  updateRunCounts(runId: string, counts: RunCounts): void {
    statement(this.db, 'UPDATE runs SET counts = ? WHERE run_id = ?').run(JSON.stringify(counts), runId);
  }

  finishRun(
    runId: string,
    r: { status: Exclude<RunStatus, 'running'>; counts: RunCounts; error?: string; at?: Date },
  ): void {
    statement(this.db, 'UPDATE runs SET ended_at = ?, status = ?, counts = ?, error = ? WHERE run_id = ?').run(
      iso(r.at),
      r.status,
      JSON.stringify(r.counts),
      r.error ?? null,
      runId,
    );
  }

  /** Runs left 'running' by a process that died (kill -9): marked interrupted at start-up. */
  closeAbandonedRuns(sourceId?: string, lane?: 'sweep' | 'other'): number {
    const sql = `UPDATE runs SET status = 'interrupted', ended_at = COALESCE(ended_at, ?) WHERE status = 'running'`;
    // Sweeps run beside polls, each under a lease of its own: one lane's start closes only that lane's runs.
    const laneSql = lane === 'sweep' ? ` AND kind = 'sweep'` : lane === 'other' ? ` AND kind != 'sweep'` : '';
    return (
      sourceId
        ? statement(this.db, `${sql} AND source_id = ?${laneSql}`).run(iso(), sourceId)
        : statement(this.db, sql).run(iso())
    ).changes;
  }

  /**
   * The newest runs of a source. `kind`: only runs of that kind (feed runs, which come every few seconds
   * while studies arrive, would otherwise crowd the last poll out of a short list).
   */
  listRuns(sourceId: string, limit = 20, kind?: RunKind): RunRecord[] {
    const rows = (
      kind
        ? statement(this.db, 'SELECT * FROM runs WHERE source_id = ? AND kind = ? ORDER BY id DESC LIMIT ?').all(
            sourceId,
            kind,
            limit,
          )
        : statement(this.db, 'SELECT * FROM runs WHERE source_id = ? ORDER BY id DESC LIMIT ?').all(sourceId, limit)
    ) as {
      run_id: string;
      source_id: string;
      kind: RunKind;
      started_at: string;
      ended_at: string | null;
      status: RunStatus;
      counts: string;
      error: string | null;
    }[];
    return rows.map((r) => ({
      runId: r.run_id,
      sourceId: r.source_id,
      kind: r.kind,
      startedAt: r.started_at,
      endedAt: r.ended_at,
      status: r.status,
      counts: JSON.parse(r.counts) as RunCounts,
      error: r.error,
    }));
  }

  // ── resources ────────────────────────────────────────────────────────────

  getResource<T extends Resource = Resource>(resourceType: string, id: string): T | undefined {
    const row = statement(this.db, 'SELECT json FROM resources WHERE resource_type = ? AND id = ?').get(
      resourceType,
      id,
    ) as { json: string } | undefined;
    return row ? (JSON.parse(row.json) as T) : undefined;
  }

  getResourceMeta(resourceType: string, id: string): StoredResourceMeta | undefined {
    const row = statement(
      this.db,
      'SELECT resource_type, id, source_id, study_uid, version_id, content_hash, created_by_bridge, last_updated FROM resources WHERE resource_type = ? AND id = ?',
    ).get(resourceType, id) as
      | {
          resource_type: string;
          id: string;
          source_id: string | null;
          study_uid: string | null;
          version_id: number;
          content_hash: string;
          created_by_bridge: number;
          last_updated: string;
        }
      | undefined;
    return (
      row && {
        resourceType: row.resource_type,
        id: row.id,
        sourceId: row.source_id,
        studyUid: row.study_uid,
        versionId: row.version_id,
        contentHash: row.content_hash,
        createdByBridge: row.created_by_bridge === 1,
        lastUpdated: row.last_updated,
      }
    );
  }

  listImagingStudies(filter: { sourceId?: string } = {}): ImagingStudy[] {
    const rows = filter.sourceId
      ? statement(
          this.db,
          `SELECT json FROM resources WHERE resource_type = 'ImagingStudy' AND source_id = ? ORDER BY id`,
        ).all(filter.sourceId)
      : statement(this.db, `SELECT json FROM resources WHERE resource_type = 'ImagingStudy' ORDER BY id`).all();
    return (rows as { json: string }[]).map((r) => JSON.parse(r.json) as ImagingStudy);
  }

  /** The ImagingStudy stored for a study, whoever created it. */
  studyResource(sourceId: string, studyUid: string): StoredResourceMeta | undefined {
    const row = statement(
      this.db,
      `SELECT id FROM resources WHERE resource_type = 'ImagingStudy' AND source_id = ? AND study_uid = ?`,
    ).get(sourceId, studyUid) as { id: string } | undefined;
    return row && this.getResourceMeta('ImagingStudy', row.id);
  }

  /**
   * Creates or updates a resource. An equal content hash changes nothing (no new version). Updating a
   * resource the bridge did not create keeps it marked as not created by the bridge.
   */
  putResource(
    resource: Resource & { id: string },
    o: {
      sourceId?: string | null;
      studyUid?: string | null;
      contentHash: string;
      createdByBridge?: boolean;
      at?: Date;
    },
  ): PutResult {
    return this.transaction(() => {
      const prev = this.getResourceMeta(resource.resourceType, resource.id);
      if (prev && prev.contentHash === o.contentHash) {
        return {
          versionId: String(prev.versionId),
          unchanged: true,
          created: false,
          createdByBridge: prev.createdByBridge,
        };
      }
      const versionId = (prev?.versionId ?? 0) + 1;
      const lastUpdated = iso(o.at);
      const createdByBridge = prev ? prev.createdByBridge : (o.createdByBridge ?? true);
      const stored = { ...resource, meta: { ...resource.meta, versionId: String(versionId), lastUpdated } };
      statement(
        this.db,
        `INSERT INTO resources (resource_type, id, source_id, study_uid, version_id, content_hash, created_by_bridge, last_updated, json)
           VALUES (@type, @id, @sourceId, @studyUid, @versionId, @hash, @created, @lastUpdated, @json)
           ON CONFLICT (resource_type, id) DO UPDATE SET source_id = excluded.source_id, study_uid = excluded.study_uid, version_id = excluded.version_id,
             content_hash = excluded.content_hash, last_updated = excluded.last_updated, json = excluded.json`,
      ).run({
        type: resource.resourceType,
        id: resource.id,
        sourceId: o.sourceId ?? prev?.sourceId ?? null,
        studyUid: o.studyUid ?? prev?.studyUid ?? null,
        versionId,
        hash: o.contentHash,
        created: createdByBridge ? 1 : 0,
        lastUpdated,
        json: JSON.stringify(stored),
      });
      // The search index follows every ImagingStudy write in the same transaction.
      if (resource.resourceType === 'ImagingStudy')
        indexStudy(this.db, studyIndexRow(stored as ImagingStudy, resource.id, o.sourceId ?? prev?.sourceId ?? null));
      return { versionId: String(versionId), unchanged: false, created: !prev, createdByBridge };
    });
  }

  deleteResource(resourceType: string, id: string): boolean {
    return this.transaction(() => {
      if (resourceType === 'ImagingStudy') unindexStudy(this.db, id);
      return (
        statement(this.db, 'DELETE FROM resources WHERE resource_type = ? AND id = ?').run(resourceType, id).changes > 0
      );
    });
  }

  /**
   * Candidate ImagingStudies of a source for a search, in id order, from the search index: a superset
   * of the matches (the caller's matcher decides). Keyset paging: pass the last id seen as `after`.
   */
  searchImagingStudies(filter: StudyIndexFilter, page: { after?: string; limit: number }): ImagingStudy[] {
    const { where, params } = filterSql(filter);
    const rows = statement(
      this.db,
      `SELECT r.json FROM imaging_study_index i JOIN resources r ON r.resource_type = 'ImagingStudy' AND r.id = i.resource_id
         WHERE ${where}${page.after !== undefined ? ' AND i.resource_id > ?' : ''} ORDER BY i.resource_id LIMIT ?`,
    ).all(...params, ...(page.after !== undefined ? [page.after] : []), page.limit) as { json: string }[];
    return rows.map((r) => JSON.parse(r.json) as ImagingStudy);
  }
}

export function openStore(file: string): Store {
  return new Store(file);
}
