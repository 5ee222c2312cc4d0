/**
 * The sync folder's vocabulary: what a run is given (RunContext, StudyMapper), what a run returns (RunSummary,
 * BackfillProgress), and the service's interface (SyncService; FeedRunner, the part of it the change-feed
 * scheduler uses). Declarations only, so that every file of the folder can name them without importing the
 * files that implement them (no import cycles, not even of types: docs/decisions.md).
 */
import type { Logger } from 'pino';
import type { SourceConfig } from '../config';
import type { DicomDataset } from '../dicom';
import type { PacsSource } from '../dicomweb';
import type { MapResult, StudyResults } from '../mapping';
import type { Sink } from '../sinks';
import type { RunCounts, RunKind, RunStatus, StateStore } from '../state';
import type { SyncSettings } from './config';
import type { StudyHoldings } from './holdings';

/** The two mapper functions the sync needs (src/mapping in production). */
export interface StudyMapper {
  mapStudy(results: StudyResults, source: SourceConfig): MapResult;
  studyFingerprint(study: DicomDataset): string;
}

/** What one run is given: StudySyncRun's parts, and the slice of them conflicts.ts quarantines with. */
export interface RunContext {
  runId: string;
  store: StateStore;
  sinks: Sink[];
  source: PacsSource;
  sourceConfig: SourceConfig;
  settings: SyncSettings;
  mapper: StudyMapper;
  log: Logger;
  now: () => Date;
  /** True once a graceful stop was requested: the run finishes the batch in hand and returns. */
  stopRequested: () => boolean;
  /** Called after each batch of studies is settled (for progress reporting). */
  onStudiesSettled?: (settled: number) => void;
  /** What the other sources hold of the same studies: a study several hold is written as one. */
  holdings: StudyHoldings;
}

export interface RunSummary {
  runId: string;
  sourceId: string;
  kind: RunKind;
  status: Exclude<RunStatus, 'running'>;
  counts: RunCounts;
  error?: string;
  /** When the run started and ended (ISO 8601), as recorded in the store. */
  startedAt: string;
  endedAt: string;
}

export interface BackfillProgress {
  sourceId: string;
  runId: string;
  windowsDone: number;
  windowsTotal: number;
  /** Studies settled so far (unchanged, written, failed or skipped). */
  studiesDone: number;
  window?: { from: string; to: string };
}

export interface SyncService {
  readonly sourceIds: string[];
  /** One poll: the checkpoint-to-today windows (with the lookback) and due retries; `undated` adds the undated scan. */
  runOnce(sourceId: string, opts?: { undated?: boolean; retries?: boolean }): Promise<RunSummary>;
  /**
   * A full-range sweep (or the rest of an interrupted one): every StudyDate and the undated studies,
   * late arrivals and changes of any age synced, vanished studies handled by the deletion policy.
   * Paced by `sync.sweep` budgets; runs beside polls of the same source.
   */
  sweep(sourceId: string): Promise<RunSummary>;
  /**
   * Syncs StudyDate from..to (YYYYMMDD or YYYY-MM-DD) with any other process working on the same range; resumes
   * where an interrupted identical backfill stopped, and returns once every window is done (by anyone).
   */
  backfill(sourceId: string, from: string, to: string, onProgress?: (p: BackfillProgress) => void): Promise<RunSummary>;
  /** The sweep, under its former name: it finds vanished studies and applies the deletion action. */
  reconcile(sourceId: string): Promise<RunSummary>;
  /** Syncs these studies (a change feed's) as one run of kind `feed`; `missing`: UIDs the PACS did not return. */
  syncStudyUids(sourceId: string, uids: string[]): Promise<{ summary: RunSummary; missing: string[] }>;
  /** Works on backfills other processes started and left windows of (each returns when its job is done). */
  joinOpenWork(): Promise<RunSummary[]>;
  /** Schedules polls, sweeps, change-feed reads per source, and joining shared backfills. */
  start(): void;
  /** Stops schedules and waits for runs in progress to finish their batch in hand. */
  stop(): Promise<void>;
  isRunning(sourceId: string): boolean;
  isSweeping(sourceId: string): boolean;
  source(sourceId: string): PacsSource;
  settings(sourceId: string): SyncSettings;
}

/** What the feed scheduler (feedSchedule.ts) needs of the service: feed runs, and a sweep when a feed went back. */
export type FeedRunner = Pick<SyncService, 'syncStudyUids' | 'sweep'>;
