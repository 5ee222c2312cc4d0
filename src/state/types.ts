/**
 * What the bridge remembers, whatever the backend holds it: per-study sync state, runs, sweeps, and the
 * resources the embedded sink wrote. Plain data; the repositories in ./repositories.ts read and write it.
 */
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
  /**
   * Why a quarantined study is held ('study-uid-conflict'), or why a failing or dead study failed when the
   * failure has a code ('truncated-by-pacs'); null otherwise.
   */
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
  /**
   * In progress: study rows the listings returned so far (a progress figure). Once complete: the distinct
   * Study Instance UIDs the PACS reported since the sweep started, whichever listing found them.
   */
  listed: number;
  completedAt: string | null;
  /** Of the listed studies, how many were synced, failing and dead when the sweep completed. */
  synced: number | null;
  failing: number | null;
  dead: number | null;
  vanished: number | null;
  /** Searches the PACS still truncated after narrowing: the listing may be incomplete. */
  unresolved: number | null;
  /** The removals this sweep held for a person instead of making (too many at once); null when none. */
  held: RemovalHold | null;
}

/**
 * Removals a sweep held back: `removals` vanished studies of the `of` the store held, above the `limit`
 * the settings allowed. `confirmedAt`: when an operator confirmed them, for the next sweep to apply.
 */
export interface RemovalHold {
  removals: number;
  of: number;
  limit: number;
  confirmedAt: string | null;
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
  /** The process running it ('<instance>:<pid>'), when recorded. */
  owner?: string | null;
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

/** A change feed's checkpoint: the last sequence number read. */
export interface FeedCheckpoint {
  feedType: string;
  lastSeq: number;
  updatedAt: string;
}

/** A study a change feed named that is not synced yet. */
export interface PendingStudy {
  studyRef: string;
  ready: boolean;
  firstSeen: string;
  lastEvent: string;
}

/** One batch of events' worth of pending studies: `ready` ones are synced at once, the others when quiet. */
export interface PendingUpdate {
  studyRef: string;
  ready: boolean;
}

export interface SweepRequest {
  requestedAt: string;
  reason: string;
}

/** A study written (or found unchanged) by every sink. */
export interface SyncedStudy {
  studyUid: string;
  studyDate: string | null;
  fingerprint: string;
  contentHash: string;
  resourceId?: string | null;
  versionId?: string | null;
  at?: Date;
  /** When the listing that led to this write saw the study (defaults to `at`). */
  seenAt?: Date;
}

/**
 * A study that failed. `countAttempt` is false for failures that are not the study's fault (the PACS or a
 * sink unreachable): it is retried next run without moving towards the dead-letter limit.
 */
export interface StudyFailure {
  studyUid: string;
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
  /** Why, as a code kept in the study's `reason` ('truncated-by-pacs'); none: cleared. */
  reason?: string;
}

/** One resource to create or update, with what the store records beside it. */
export interface ResourcePut {
  resource: import('fhir/r4').Resource & { id: string };
  sourceId?: string | null;
  studyUid?: string | null;
  contentHash: string;
  createdByBridge?: boolean;
  at?: Date;
}

/** One source's copy of a study: the ImagingStudy as that source maps it (JSON), when it was last written. */
export interface StudyHolding {
  studyUid: string;
  sourceId: string;
  json: string;
  updatedAt: string;
}

/** A share of a larger job (a backfill's window) that any replica may claim. */
export interface WorkItem {
  id: number;
  /** The job it belongs to, e.g. `backfill:<source>:<from>-<to>`. */
  job: string;
  sourceId: string;
  /** What to do, as the job's owner wrote it (a window: { from, to }). */
  payload: Record<string, unknown>;
  status: 'pending' | 'claimed' | 'done';
  claimedBy: string | null;
  /** When the claim lapses unless renewed (ISO), while claimed. */
  claimExpires: string | null;
  attempts: number;
}

export type LeaseResult = { ok: true } | { ok: false; holder: string };
