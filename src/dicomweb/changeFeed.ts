/**
 * A PACS change feed: an ordered log of what changed, read from a sequence number on. The sync uses
 * it for discovery (src/sync/feed.ts): studies reported ready are synced within seconds of arriving,
 * whatever their StudyDate. Each feed type (Orthanc's /changes today) implements ChangeFeed; the
 * rest of the bridge sees only this. How another feed (Azure's /changefeed) plugs in: docs/decisions.md.
 * The factory that builds one for a source (and probes for `auto`) is in changeFeeds.ts.
 */
import type { SourceConfig } from '../config';

/**
 * What one event means for the sync:
 * - `study-ready`: the study is complete for now (Orthanc's StableStudy): sync it;
 * - `study-changing`: the study is being stored or changed (NewStudy, an instance Create): note it as
 *   pending, and sync it once it is ready, or once nothing more has happened to it for a while;
 * - `study-deleted`: the study is gone (feeds that report deletions; Orthanc 1.10 does not);
 * - `other`: nothing for the sync (series, instance, patient events; attachments; jobs).
 */
export type FeedEventKind = 'study-ready' | 'study-changing' | 'study-deleted' | 'other';

export interface FeedEvent {
  seq: number;
  kind: FeedEventKind;
  /**
   * The feed's reference to the study, for study events: Orthanc's study id; for a feed whose events
   * carry the Study Instance UID (Azure's), the UID itself. ChangeFeed.studyUids turns it into the UID.
   */
  studyRef?: string;
}

export interface FeedPage {
  /** Events after `since`, in sequence order. Sequence numbers may have gaps (deleted entries). */
  events: FeedEvent[];
  /** The sequence number to read on from next time. */
  last: number;
  /** No more events for now. */
  done: boolean;
}

export interface ChangeFeedStats {
  /** HTTP requests made to the feed and to resolve study references, so far (each attempt). */
  requests: number;
  /** Attempts repeated by the retry policy (429, 502–504, network errors, timeouts). */
  retries?: number;
}

export interface ChangeFeed {
  readonly type: string;
  /**
   * Up to `limit` events after `since`. When the answer is done and its `last` is below `since`, the
   * feed went back (the PACS database was replaced): the caller must not trust its checkpoint.
   */
  poll(since: number, limit: number): Promise<FeedPage>;
  /** The sequence number of the newest event (0 for none): where a new reader starts. */
  head(): Promise<number>;
  /**
   * Study Instance UIDs for study references (`studyRef`), cached; the identity for a feed whose
   * references are UIDs. A reference whose study no longer exists is left out of the answer (deleted
   * since the event: the sweep's business).
   */
  studyUids(refs: string[]): Promise<Map<string, string>>;
  readonly stats: ChangeFeedStats;
}

/** The parts of a source's configuration a feed needs: its endpoint, authentication and TLS. */
export type FeedSourceConfig = Pick<
  SourceConfig,
  'id' | 'qidoBase' | 'auth' | 'tls' | 'timeoutMs' | 'concurrency' | 'retries'
> & {
  changeFeed: SourceConfig['changeFeed'];
};
