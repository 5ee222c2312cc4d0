/**
 * Change-feed state in the embedded store (schema version 5), per source:
 * - `feed_state`: the feed's checkpoint, the last sequence number read;
 * - `feed_pending`: studies the feed named that are not synced yet (still being stored, or waiting for
 *   a run), so a restart or a failed run loses none of them;
 * - `sweep_requests`: the hook for the full-range sweep. A row asks for a sweep of that source soon
 *   (the feed went back: the PACS database was replaced, so what the feed would have said is lost).
 *   The sweep reads it with `sweepRequest` and clears it with `clearSweepRequest` once a complete sweep
 *   that started after `requestedAt` is done.
 */
import type Database from 'better-sqlite3';
import type { FeedStateRepository } from '../repositories';
import type { FeedCheckpoint, PendingStudy, PendingUpdate, SweepRequest } from '../types';
import { statement } from './statements';

export const FEED_STATE_SQL = `
  CREATE TABLE feed_state (
    source_id   TEXT PRIMARY KEY,
    feed_type   TEXT NOT NULL,            -- 'orthanc', …
    last_seq    INTEGER NOT NULL,         -- last sequence number read (events up to it are in feed_pending or done)
    updated_at  TEXT NOT NULL
  );
  CREATE TABLE feed_pending (
    source_id   TEXT NOT NULL,
    study_ref   TEXT NOT NULL,            -- the feed's id of the study (Orthanc's study id), or its UID
    ready       INTEGER NOT NULL,         -- 1: reported ready (StableStudy), sync now; 0: still changing
    first_seen  TEXT NOT NULL,            -- first event about it: freshness is measured from here
    last_event  TEXT NOT NULL,            -- latest event about it: a study quiet for settleSeconds is synced
    PRIMARY KEY (source_id, study_ref)
  );
  CREATE TABLE sweep_requests (
    source_id    TEXT PRIMARY KEY,
    requested_at TEXT NOT NULL,
    reason       TEXT NOT NULL
  );
`;

const iso = (d: Date) => d.toISOString();

/** Feed state of one store; every method is one short statement or transaction. */
export class SqliteFeedState implements FeedStateRepository {
  constructor(private readonly db: Database.Database) {}

  async checkpoint(sourceId: string): Promise<FeedCheckpoint | undefined> {
    return this.checkpointNow(sourceId);
  }

  private checkpointNow(sourceId: string): FeedCheckpoint | undefined {
    const row = statement(this.db, 'SELECT feed_type, last_seq, updated_at FROM feed_state WHERE source_id = ?').get(
      sourceId,
    ) as { feed_type: string; last_seq: number; updated_at: string } | undefined;
    return row && { feedType: row.feed_type, lastSeq: row.last_seq, updatedAt: row.updated_at };
  }

  /**
   * Records a page of events: pending studies upserted, then the checkpoint moved to `lastSeq`, in one
   * transaction, and only if the checkpoint is still `expectedSeq` (another process may read the same
   * feed): false when it was not, and nothing was written.
   */
  async recordPage(
    sourceId: string,
    feedType: string,
    expectedSeq: number | undefined,
    lastSeq: number,
    pending: PendingUpdate[],
    at: Date,
  ): Promise<boolean> {
    return this.db
      .transaction(() => {
        if (this.checkpointNow(sourceId)?.lastSeq !== expectedSeq) return false;
        const upsert = statement(
          this.db,
          `INSERT INTO feed_pending (source_id, study_ref, ready, first_seen, last_event) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (source_id, study_ref) DO UPDATE SET ready = MAX(feed_pending.ready, excluded.ready), last_event = excluded.last_event`,
        );
        for (const p of pending) upsert.run(sourceId, p.studyRef, p.ready ? 1 : 0, iso(at), iso(at));
        this.setCheckpointNow(sourceId, feedType, lastSeq, at);
        return true;
      })
      .immediate();
  }

  /** Sets the checkpoint whatever it was (a new reader starting at the head; a feed that went back). */
  async setCheckpoint(sourceId: string, feedType: string, lastSeq: number, at: Date): Promise<void> {
    this.setCheckpointNow(sourceId, feedType, lastSeq, at);
  }

  private setCheckpointNow(sourceId: string, feedType: string, lastSeq: number, at: Date): void {
    statement(
      this.db,
      `INSERT INTO feed_state (source_id, feed_type, last_seq, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (source_id) DO UPDATE SET feed_type = excluded.feed_type, last_seq = excluded.last_seq, updated_at = excluded.updated_at`,
    ).run(sourceId, feedType, lastSeq, iso(at));
  }

  /** Pending studies due for a sync: reported ready, or quiet since `quietSince`. Oldest first. */
  async duePending(sourceId: string, quietSince: Date, limit: number): Promise<PendingStudy[]> {
    const rows = statement(
      this.db,
      `SELECT study_ref, ready, first_seen, last_event FROM feed_pending
         WHERE source_id = ? AND (ready = 1 OR last_event <= ?) ORDER BY first_seen, study_ref LIMIT ?`,
    ).all(sourceId, iso(quietSince), limit) as {
      study_ref: string;
      ready: number;
      first_seen: string;
      last_event: string;
    }[];
    return rows.map((r) => ({
      studyRef: r.study_ref,
      ready: r.ready === 1,
      firstSeen: r.first_seen,
      lastEvent: r.last_event,
    }));
  }

  /** How many studies the feed named that are not synced yet, and the oldest first sighting among them. */
  async pendingSummary(sourceId: string): Promise<{ count: number; oldest: string | null }> {
    const row = statement(
      this.db,
      'SELECT COUNT(*) AS n, MIN(first_seen) AS oldest FROM feed_pending WHERE source_id = ?',
    ).get(sourceId) as { n: number; oldest: string | null };
    return { count: row.n, oldest: row.oldest };
  }

  /**
   * Done with these pending studies (synced, recorded as failing, or gone from the PACS). A study named
   * again by an event after `handledSince` stays pending: it changed while it was being synced.
   */
  async removePending(sourceId: string, studyRefs: string[], handledSince: Date): Promise<void> {
    const del = statement(
      this.db,
      'DELETE FROM feed_pending WHERE source_id = ? AND study_ref = ? AND last_event <= ?',
    );
    this.db.transaction(() => studyRefs.forEach((ref) => del.run(sourceId, ref, iso(handledSince))))();
  }

  async requestSweep(sourceId: string, reason: string, at: Date): Promise<void> {
    statement(
      this.db,
      `INSERT INTO sweep_requests (source_id, requested_at, reason) VALUES (?, ?, ?)
         ON CONFLICT (source_id) DO UPDATE SET requested_at = excluded.requested_at, reason = excluded.reason`,
    ).run(sourceId, iso(at), reason);
  }

  async sweepRequest(sourceId: string): Promise<SweepRequest | undefined> {
    const row = statement(this.db, 'SELECT requested_at, reason FROM sweep_requests WHERE source_id = ?').get(
      sourceId,
    ) as { requested_at: string; reason: string } | undefined;
    return row && { requestedAt: row.requested_at, reason: row.reason };
  }

  /** Clears the request if the sweep that just completed started at or after it (a newer one stays). */
  async clearSweepRequest(sourceId: string, sweepStartedAt: Date): Promise<void> {
    statement(this.db, 'DELETE FROM sweep_requests WHERE source_id = ? AND requested_at <= ?').run(
      sourceId,
      iso(sweepStartedAt),
    );
  }
}
