/** Change-feed state in the PostgreSQL store (the tables of SQLite's schema version 5). */
import type { Pool, PoolClient } from 'pg';
import type { FeedStateRepository } from '../repositories';
import { iso } from '../rows';
import type { FeedCheckpoint, PendingStudy, PendingUpdate, SweepRequest } from '../types';
import { changes, one, rows, Rollback, transactionOr } from './db';

export class PgFeedState implements FeedStateRepository {
  constructor(private readonly pool: Pool) {}

  async checkpoint(sourceId: string): Promise<FeedCheckpoint | undefined> {
    const row = await one<{ feed_type: string; last_seq: number; updated_at: string }>(
      this.pool,
      'SELECT feed_type, last_seq, updated_at FROM feed_state WHERE source_id = $1',
      [sourceId],
    );
    return row && { feedType: row.feed_type, lastSeq: row.last_seq, updatedAt: row.updated_at };
  }

  /**
   * The checkpoint moves first, as a compare-and-set: a replica reading the same page at once waits on
   * that row (or on its key, for the first page) and then finds it moved, so only one records the page.
   */
  async recordPage(
    sourceId: string,
    feedType: string,
    expectedSeq: number | undefined,
    lastSeq: number,
    pending: PendingUpdate[],
    at: Date,
  ): Promise<boolean> {
    return transactionOr(this.pool, async (c) => {
      if (!(await this.moveCheckpoint(c, sourceId, feedType, expectedSeq, lastSeq, at))) throw new Rollback(false);
      for (const p of pending)
        await c.query(
          `INSERT INTO feed_pending (source_id, study_ref, ready, first_seen, last_event) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (source_id, study_ref) DO UPDATE SET ready = feed_pending.ready OR EXCLUDED.ready, last_event = EXCLUDED.last_event`,
          [sourceId, p.studyRef, p.ready, iso(at)],
        );
      return true;
    });
  }

  private async moveCheckpoint(
    c: PoolClient,
    sourceId: string,
    feedType: string,
    expectedSeq: number | undefined,
    lastSeq: number,
    at: Date,
  ): Promise<boolean> {
    if (expectedSeq === undefined)
      return (
        (await changes(
          c,
          `INSERT INTO feed_state (source_id, feed_type, last_seq, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (source_id) DO NOTHING`,
          [sourceId, feedType, lastSeq, iso(at)],
        )) > 0
      );
    return (
      (await changes(
        c,
        'UPDATE feed_state SET feed_type = $2, last_seq = $3, updated_at = $4 WHERE source_id = $1 AND last_seq = $5',
        [sourceId, feedType, lastSeq, iso(at), expectedSeq],
      )) > 0
    );
  }

  /** Sets the checkpoint whatever it was (a new reader starting at the head; a feed that went back). */
  async setCheckpoint(sourceId: string, feedType: string, lastSeq: number, at: Date): Promise<void> {
    await this.pool.query(
      `INSERT INTO feed_state (source_id, feed_type, last_seq, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (source_id) DO UPDATE SET feed_type = EXCLUDED.feed_type, last_seq = EXCLUDED.last_seq, updated_at = EXCLUDED.updated_at`,
      [sourceId, feedType, lastSeq, iso(at)],
    );
  }

  async duePending(sourceId: string, quietSince: Date, limit: number): Promise<PendingStudy[]> {
    const found = await rows<{ study_ref: string; ready: boolean; first_seen: string; last_event: string }>(
      this.pool,
      `SELECT study_ref, ready, first_seen, last_event FROM feed_pending
         WHERE source_id = $1 AND (ready OR last_event <= $2) ORDER BY first_seen, study_ref LIMIT $3`,
      [sourceId, iso(quietSince), limit],
    );
    return found.map((r) => ({
      studyRef: r.study_ref,
      ready: r.ready,
      firstSeen: r.first_seen,
      lastEvent: r.last_event,
    }));
  }

  async pendingSummary(sourceId: string): Promise<{ count: number; oldest: string | null }> {
    const row = await one<{ n: number; oldest: string | null }>(
      this.pool,
      'SELECT COUNT(*) AS n, MIN(first_seen) AS oldest FROM feed_pending WHERE source_id = $1',
      [sourceId],
    );
    return { count: row?.n ?? 0, oldest: row?.oldest ?? null };
  }

  async removePending(sourceId: string, studyRefs: string[], handledSince: Date): Promise<void> {
    if (!studyRefs.length) return;
    await this.pool.query(
      'DELETE FROM feed_pending WHERE source_id = $1 AND study_ref = ANY($2::text[]) AND last_event <= $3',
      [sourceId, studyRefs, iso(handledSince)],
    );
  }

  async requestSweep(sourceId: string, reason: string, at: Date): Promise<void> {
    await this.pool.query(
      `INSERT INTO sweep_requests (source_id, requested_at, reason) VALUES ($1, $2, $3)
         ON CONFLICT (source_id) DO UPDATE SET requested_at = EXCLUDED.requested_at, reason = EXCLUDED.reason`,
      [sourceId, iso(at), reason],
    );
  }

  async sweepRequest(sourceId: string): Promise<SweepRequest | undefined> {
    const row = await one<{ requested_at: string; reason: string }>(
      this.pool,
      'SELECT requested_at, reason FROM sweep_requests WHERE source_id = $1',
      [sourceId],
    );
    return row && { requestedAt: row.requested_at, reason: row.reason };
  }

  async clearSweepRequest(sourceId: string, sweepStartedAt: Date): Promise<void> {
    await this.pool.query('DELETE FROM sweep_requests WHERE source_id = $1 AND requested_at <= $2', [
      sourceId,
      iso(sweepStartedAt),
    ]);
  }
}
