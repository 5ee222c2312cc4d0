/**
 * The state the bridge keeps, as repositories: one interface per concern, each with an embedded SQLite
 * implementation (./sqlite, the default) and a PostgreSQL one (./postgres) that several replicas share.
 * Async throughout because `pg` is; the SQLite implementations answer synchronously inside.
 */
import type { ImagingStudy, Resource } from 'fhir/r4';
import type { StudyIndexFilter } from './studyIndex';
import type {
  FeedCheckpoint,
  LeaseResult,
  PendingStudy,
  PendingSummary,
  PendingUpdate,
  PutResult,
  RemovalHold,
  ResourcePut,
  RunCounts,
  RunKind,
  RunRecord,
  RunStatus,
  SourceCounts,
  StoredResourceMeta,
  StudyHolding,
  StudyFailure,
  StudyState,
  StudyStatus,
  SweepRecord,
  SweepRequest,
  SyncedStudy,
  WorkItem,
} from './types';

/** Per-source, per-name progress marks: the last StudyDate whose window is complete. */
export interface CheckpointRepository {
  get(sourceId: string, name?: string): Promise<string | undefined>;
  /** Moves a checkpoint forward only: a late or repeated window never moves it back. */
  advance(sourceId: string, throughDate: string, name?: string): Promise<void>;
  list(sourceId: string): Promise<{ name: string; throughDate: string; updatedAt: string }[]>;
}

/** Per-study sync state: what was written, what fails and when it is retried, what is held back. */
export interface StudyStateRepository {
  get(sourceId: string, studyUid: string): Promise<StudyState | undefined>;
  getMany(sourceId: string, studyUids: string[]): Promise<Map<string, StudyState>>;
  list(sourceId: string, status?: StudyStatus): Promise<StudyState[]>;
  /** Marks studies as seen on the PACS now (existing rows only). */
  touchSeen(sourceId: string, studyUids: string[], at?: Date): Promise<void>;
  /** Studies written (or found unchanged) by every sink, in one transaction: failures reset. */
  recordSynced(sourceId: string, studies: SyncedStudy[]): Promise<void>;
  /** Failed studies, in one transaction; returns each one's new state, in order. */
  recordFailures(sourceId: string, failures: StudyFailure[]): Promise<StudyState[]>;
  /** Failing studies whose retry is due (at or before `now`). */
  dueRetries(sourceId: string, now?: Date): Promise<StudyState[]>;
  /**
   * Quarantines a study: it is not written until replayed. Keeps what was written before (resource_id);
   * the content hash is cleared so a replay writes the study again whatever it maps to.
   */
  recordQuarantine(
    sourceId: string,
    studyUid: string,
    q: { studyDate: string | null; fingerprint: string | null; reason: string; detail: string; at?: Date },
  ): Promise<StudyState>;
  /** Re-queues dead letters and quarantined studies (one, or all of a source), due now. Returns how many. */
  replay(sourceId: string, studyUid?: string): Promise<number>;
  /** After a sweep removed or marked a vanished study. */
  markRemoved(sourceId: string, studyUid: string, reason: string): Promise<void>;
  forget(sourceId: string, studyUid: string): Promise<void>;
  /** Studies the store believes are on the PACS (everything but removed). */
  present(sourceId: string): Promise<{ studyUid: string; studyDate: string | null }[]>;
  /** Present studies no listing has seen since `since`: after a complete sweep starting then, the vanished. */
  unseenSince(sourceId: string, since: string): Promise<{ studyUid: string; studyDate: string | null }[]>;
  earliestStudyDate(sourceId: string): Promise<string | undefined>;
  counts(sourceId: string): Promise<SourceCounts>;
  /** Source ids that have any state, runs or resources. */
  knownSources(): Promise<string[]>;
  /** Studies not yet written (failing, dead) and the one waiting longest. */
  pendingSummary(sourceId: string): Promise<PendingSummary>;
  /** Freshness (ms from sighting to write) of the studies settled at or after `since`, ascending. */
  freshnessSince(sourceId: string, since: Date): Promise<number[]>;
  /** Studies per StudyDate in [from, to] (any state but removed): density for window planning. */
  studiesPerDay(sourceId: string, from: string, to: string): Promise<Map<string, number>>;
}

/** Removals a sweep holds: what it records before anyone confirms them. */
export type HeldRemovals = Omit<RemovalHold, 'confirmedAt'>;

/** Full-range sweeps: progress (resumable) and, once complete, coverage. */
export interface SweepRepository {
  /** The source's unfinished sweep, to resume; otherwise a new one starting `at`. */
  open(sourceId: string, at?: Date): Promise<SweepRecord>;
  advance(id: number, p: { throughDate?: string; listed: number; undatedDone?: boolean }): Promise<void>;
  /**
   * Closes a sweep with its coverage: the studies seen since it started (its `listed`, each once), and how
   * many of them are synced, failing, dead; `held`: the removals it held for a person instead of making.
   */
  complete(
    id: number,
    r: { vanished: number; unresolved: number; at?: Date; held?: HeldRemovals },
  ): Promise<SweepRecord>;
  lastComplete(sourceId: string): Promise<SweepRecord | undefined>;
  /**
   * An operator confirms the removals the source's last complete sweep held, for the next sweep to apply.
   * Returns that sweep; undefined when it held none (an older hold has lapsed and is not confirmed).
   * A second confirmation keeps the first one's time.
   */
  confirmHeld(sourceId: string, at?: Date): Promise<SweepRecord | undefined>;
  /** The sweep in progress (or interrupted, to be resumed), if any. */
  current(sourceId: string): Promise<SweepRecord | undefined>;
}

/** Change-feed state per source: its checkpoint, the studies it named not yet synced, sweep requests. */
export interface FeedStateRepository {
  checkpoint(sourceId: string): Promise<FeedCheckpoint | undefined>;
  /**
   * Records a page of events (pending studies upserted, checkpoint moved to `lastSeq`) in one transaction,
   * only if the checkpoint is still `expectedSeq`: false when it was not, and nothing was written.
   */
  recordPage(
    sourceId: string,
    feedType: string,
    expectedSeq: number | undefined,
    lastSeq: number,
    pending: PendingUpdate[],
    at: Date,
  ): Promise<boolean>;
  setCheckpoint(sourceId: string, feedType: string, lastSeq: number, at: Date): Promise<void>;
  /** Pending studies due for a sync: reported ready, or quiet since `quietSince`. Oldest first. */
  duePending(sourceId: string, quietSince: Date, limit: number): Promise<PendingStudy[]>;
  pendingSummary(sourceId: string): Promise<{ count: number; oldest: string | null }>;
  /** Done with these (a study named again by an event after `handledSince` stays pending). */
  removePending(sourceId: string, studyRefs: string[], handledSince: Date): Promise<void>;
  requestSweep(sourceId: string, reason: string, at: Date): Promise<void>;
  sweepRequest(sourceId: string): Promise<SweepRequest | undefined>;
  /** Clears the request if the sweep that just completed started at or after it (a newer one stays). */
  clearSweepRequest(sourceId: string, sweepStartedAt: Date): Promise<void>;
}

/** Run leases (one holder per lane across processes and replicas) and run history. */
export interface RunRepository {
  /**
   * Takes the lane's lease for `owner` unless another owner holds an unexpired one that `isAbandoned`
   * does not declare dead. Returns the current holder when refused.
   */
  acquireLease(
    lane: string,
    owner: string,
    ttlMs: number,
    isAbandoned?: (holder: string) => boolean,
    at?: Date,
  ): Promise<LeaseResult>;
  /** False when the lease is no longer this owner's (it expired and another took it). */
  renewLease(lane: string, owner: string, ttlMs: number, at?: Date): Promise<boolean>;
  releaseLease(lane: string, owner: string): Promise<void>;
  /** `owner`: the process running it, so another can close it if that process dies. */
  startRun(sourceId: string, kind: RunKind, at?: Date, owner?: string): Promise<string>;
  updateRunCounts(runId: string, counts: RunCounts): Promise<void>;
  finishRun(
    runId: string,
    r: { status: Exclude<RunStatus, 'running'>; counts: RunCounts; error?: string; at?: Date },
  ): Promise<void>;
  /**
   * Runs left 'running' by a process that died (kill -9), marked interrupted: those of the lane whose lease the
   * caller now holds ('sweep': sweeps; 'other': polls, feed runs, reconciles). Backfill runs share no lease.
   */
  closeAbandonedRuns(sourceId?: string, lane?: 'sweep' | 'other'): Promise<number>;
  /** Marks these processes' runs still 'running' (of one kind) interrupted: the processes are known dead. */
  closeRunsOf(owners: string[], kind: RunKind): Promise<number>;
  /** The newest runs of a source; `kind`: only runs of that kind. */
  listRuns(sourceId: string, limit?: number, kind?: RunKind): Promise<RunRecord[]>;
}

/** Shares of a job that replicas claim, each under a lease that a dead claimant loses. */
export interface WorkQueue {
  /**
   * Adds the job's items unless the job already has items (a second replica starting the same job joins it).
   * `done` items are recorded as done already (progress an earlier run kept elsewhere).
   */
  enqueue(job: string, sourceId: string, items: { payload: Record<string, unknown>; done?: boolean }[]): Promise<void>;
  /** Claims the job's next pending item, or one whose claim expired; undefined when none is left to claim. */
  claim(job: string, owner: string, ttlMs: number, at?: Date): Promise<WorkItem | undefined>;
  renew(id: number, owner: string, ttlMs: number, at?: Date): Promise<boolean>;
  complete(id: number, owner: string): Promise<void>;
  /** Gives an unfinished item back (a stop, a failure): another replica may take it at once. */
  release(id: number, owner: string): Promise<void>;
  /** Items of a job by status. */
  progress(job: string): Promise<{ pending: number; claimed: number; done: number }>;
  /** The job's items claimed now, by whomever (to find those a dead process holds). */
  claimed(job: string): Promise<WorkItem[]>;
  /** Jobs of these sources with items not done yet (pending, or claimed by someone). */
  openJobs(sourceIds: string[]): Promise<{ job: string; sourceId: string }[]>;
}

/** The resources the embedded sink stores, and their search index. */
export interface ResourceRepository {
  get<T extends Resource = Resource>(resourceType: string, id: string): Promise<T | undefined>;
  getMeta(resourceType: string, id: string): Promise<StoredResourceMeta | undefined>;
  /** The ImagingStudy stored for a study, whoever created it. */
  studyResource(sourceId: string, studyUid: string): Promise<StoredResourceMeta | undefined>;
  listImagingStudies(filter?: { sourceId?: string }): Promise<ImagingStudy[]>;
  /**
   * Creates or updates resources in one transaction: all stored or none. An equal content hash changes
   * nothing (no new version); updating a resource the bridge did not create keeps it so marked.
   */
  put(puts: ResourcePut[]): Promise<PutResult[]>;
  delete(resourceType: string, id: string): Promise<boolean>;
  /**
   * Candidate ImagingStudies of a source for a search, in id order, from the search index: a superset
   * of the matches (the caller's matcher decides). Keyset paging: pass the last id seen as `after`.
   */
  searchImagingStudies(filter: StudyIndexFilter, page: { after?: string; limit: number }): Promise<ImagingStudy[]>;
}

/**
 * Which sources hold a study, each with the study as it maps it: a study several PACS hold is one ImagingStudy
 * made of all of them (src/sync/holdings.ts), and stays until the last of them no longer holds it.
 */
export interface HoldingRepository {
  /** This source holds these studies, as mapped (upserts). */
  record(sourceId: string, holdings: { studyUid: string; json: string }[], at?: Date): Promise<void>;
  /** Every source's holding of these studies, by study, in source id order; studies none holds are absent. */
  of(studyUids: string[]): Promise<Map<string, StudyHolding[]>>;
  /** This source no longer holds the study (vanished, quarantined). */
  release(sourceId: string, studyUid: string): Promise<void>;
}

/** Every repository over one backend, and the backend's own life. */
export interface StateStore {
  /** 'sqlite' or 'postgres'. */
  readonly backend: string;
  /** Where the state lives, for logs and status, without credentials. */
  readonly location: string;
  readonly checkpoints: CheckpointRepository;
  readonly studies: StudyStateRepository;
  readonly sweeps: SweepRepository;
  readonly feed: FeedStateRepository;
  readonly runs: RunRepository;
  readonly work: WorkQueue;
  readonly resources: ResourceRepository;
  readonly holdings: HoldingRepository;
  /** Proves the backend can take a write now (a rolled-back write); the text says what was checked. */
  ping(): Promise<string>;
  close(): Promise<void>;
}
