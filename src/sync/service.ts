/**
 * The sync service: polls, feed runs, sweeps and backfills per source, on demand or on a cron schedule. Polls and
 * feed runs of a source never overlap, nor two sweeps of it, here or in another process sharing the store (run
 * lanes, lanes.ts); a backfill is shared by whoever works on it (backfill.ts). A stop is graceful: the batch in hand
 * is finished and recorded, checkpoints stay where the last complete window left them.
 */
import { Cron } from 'croner';
import type { Logger } from 'pino';
import type { SourceConfig } from '../config';
import { createPacsSource, type PacsSource, type StudyWindow } from '../dicomweb';
import { studyUidOf } from '../dicom';
import type { OutboundMetrics } from '../http';
import { createResourceGuard, mapStudy, studyFingerprint } from '../mapping';
import { silentLogger } from '../log';
import type { Sink } from '../sinks';
import type { StateStore } from '../state';
import {
  sweepCron,
  syncSchema,
  syncSettingsFor,
  type SyncConfig,
  type SyncConfigInput,
  type SyncSettings,
} from './config';
import { StudyHoldings } from './holdings';
import { todayIn } from '../time';
import { pollRange } from './dates';
import { SharedBackfills } from './backfill';
import { describeError, SourceBusyError } from './errors';
import { feedSchedulerFor, type FeedScheduler } from './feedSchedule';
import { StudySyncRun } from './run';
import { sweepSource, windowPlanner } from './sweep';
import { laneOf, RunLanes, type LaneRun } from './lanes';
import { pacedRequest, RequestPacer, runPaced, sweepRate, warnOnce } from './sweepPace';
import type { BackfillProgress, RunSummary, StudyMapper, SyncService } from './types';

export interface SyncServiceOptions {
  config: { sources: SourceConfig[]; sync?: SyncConfig | SyncConfigInput };
  store: StateStore;
  sinks: Sink[];
  /** Builds a PACS source from its configuration (src/dicomweb's createPacsSource by default). */
  sourceFactory?: (cfg: SourceConfig) => PacsSource;
  /** Where the default sources record their requests (BridgeMetrics); none: not recorded. */
  metrics?: OutboundMetrics;
  /** The mapper (src/mapping by default). */
  mapper?: StudyMapper;
  /** Validate every mapped resource against base R4 and TW Core before any sink sees it. */
  validateResources?: boolean;
  logger?: Logger;
  /** The clock, for tests. */
  now?: () => Date;
}

/** Source loggers by source id: each says a given warning once per sweep (reset when a sweep starts). */
type SourceLoggers = Map<string, ReturnType<typeof warnOnce>>;

function defaultSourceFactory(
  logger: Logger,
  loggers: SourceLoggers,
  metrics: OutboundMetrics | undefined,
): (cfg: SourceConfig) => PacsSource {
  // The logger carries the source layer's "results may be missing" warnings (UIDs and windows only);
  // requests started inside a sweep wait for its budget (pacedRequest), others go at once.
  return (cfg) => {
    const once = warnOnce(logger);
    loggers.set(cfg.id, once);
    return createPacsSource(cfg, { logger: once, beforeRequest: pacedRequest, metrics });
  };
}

/**
 * The mapper, optionally behind the profile guard: a resource that fails base R4 or TW Core validation
 * becomes a mapping error for its study (recorded, retried, dead-lettered), never a write.
 */
function defaultMapper(validate: boolean): StudyMapper {
  if (!validate) return { mapStudy, studyFingerprint };
  const guard = createResourceGuard(true);
  return {
    studyFingerprint,
    mapStudy(results, source) {
      const result = mapStudy(results, source);
      if (!result.ok) return result;
      for (const resource of [result.imagingStudy, result.endpoint]) {
        const verdict = guard.check(resource);
        if (!verdict.ok) {
          const error = {
            studyUid: studyUidOf(results.study),
            tag: '',
            code: 'invalid-resource' as const,
            message: verdict.message,
          };
          return { ok: false, warnings: result.warnings, error };
        }
      }
      return result;
    },
  };
}

const normalizeDate = (d: string) => d.replace(/-/g, '');

/** QIDO requests a source has made so far, all levels. */
function qidoRequestCount(stats: PacsSource['stats']): number {
  return stats.requests.studies + stats.requests.series + stats.requests.instances;
}

export function createSyncService(options: SyncServiceOptions): SyncService {
  return new BridgeSyncService(options);
}

/**
 * The service: its sources (one PacsSource each for its life, so capability probes and tokens are reused),
 * the run lanes, shared backfills and the schedules. Each public method is one kind of run.
 */
class BridgeSyncService implements SyncService {
  readonly sourceIds: string[];
  private readonly sync: SyncConfig;
  private readonly store: StateStore;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly mapper: StudyMapper;
  private readonly configs: Map<string, SourceConfig>;
  private readonly holdings: StudyHoldings;
  private readonly sources = new Map<string, PacsSource>();
  private readonly sourceLoggers: SourceLoggers = new Map();
  private readonly lanes: RunLanes;
  private readonly backfills: SharedBackfills;
  private readonly crons: Cron[] = [];
  private feeds: FeedScheduler | undefined;
  private joinTimer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(private readonly options: SyncServiceOptions) {
    this.sync = syncSchema.parse(options.config.sync ?? {});
    this.store = options.store;
    this.log = options.logger ?? silentLogger;
    this.now = options.now ?? (() => new Date());
    this.mapper = options.mapper ?? defaultMapper(options.validateResources ?? false);
    this.configs = new Map(options.config.sources.map((s) => [s.id, s]));
    this.holdings = new StudyHoldings(this.store, options.config.sources);
    this.sourceIds = [...this.configs.keys()];
    // A run's lease on its lane and a claim on a work item: renewed at a third of it while the work goes on.
    const leaseMs = this.sync.coordination.leaseSeconds * 1000;
    this.lanes = new RunLanes({
      store: this.store,
      leaseMs,
      log: this.log,
      now: this.now,
      newRun: (o, runId, log) => this.newRun(o, runId, log),
      qidoRequests: (sourceId) => qidoRequestCount(this.source(sourceId).stats),
    });
    this.backfills = new SharedBackfills({
      store: this.store,
      lanes: this.lanes,
      leaseMs,
      log: this.log,
      stopRequested: () => this.stopping,
      windowDays: (sourceId) => this.settings(sourceId).windowDays,
    });
  }

  private configOf(sourceId: string): SourceConfig {
    const cfg = this.configs.get(sourceId);
    if (!cfg) throw new Error(`unknown source "${sourceId}" (configured: ${this.sourceIds.join(', ')})`);
    return cfg;
  }

  source(sourceId: string): PacsSource {
    let s = this.sources.get(sourceId);
    if (!s) {
      const factory =
        this.options.sourceFactory ?? defaultSourceFactory(this.log, this.sourceLoggers, this.options.metrics);
      s = factory(this.configOf(sourceId));
      this.sources.set(sourceId, s);
    }
    return s;
  }

  settings(sourceId: string): SyncSettings {
    return syncSettingsFor(this.sync, sourceId);
  }

  isRunning(sourceId: string): boolean {
    return this.lanes.has(sourceId);
  }

  isSweeping(sourceId: string): boolean {
    return this.lanes.has(laneOf(sourceId, 'sweep'));
  }

  private newRun(o: LaneRun, runId: string, log: Logger): StudySyncRun {
    return new StudySyncRun({
      runId,
      store: this.store,
      sinks: this.options.sinks,
      source: this.source(o.sourceId),
      sourceConfig: this.configOf(o.sourceId),
      settings: this.settings(o.sourceId),
      mapper: this.mapper,
      log,
      now: this.now,
      stopRequested: () => this.stopping,
      onStudiesSettled: o.onSettled,
      holdings: this.holdings,
    });
  }

  /** A run of the source's lane; an unknown source is refused before anything starts. */
  private exclusive(o: LaneRun): Promise<RunSummary> {
    try {
      this.configOf(o.sourceId);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.lanes.run(o);
  }

  runOnce(sourceId: string, opts: { undated?: boolean; retries?: boolean } = {}): Promise<RunSummary> {
    return this.exclusive({
      sourceId,
      kind: 'poll',
      body: async (run) => {
        // Once a window is done, every study in it is written, unchanged, or recorded for retry.
        const windows = await this.pollWindows(sourceId);
        const advance = (w: StudyWindow) => this.store.checkpoints.advance(sourceId, w.to, 'poll');
        if (this.stopping || !(await run.syncWindows(windows, { onWindowDone: advance }))) return { complete: false };
        // The undated studies are the sweep's: listing them costs a scan of every study.
        if (opts.undated && !(await run.syncUndated())) return { complete: false };
        if ((opts.retries ?? true) && !(await run.syncDueRetries())) return { complete: false };
        return { complete: true };
      },
    });
  }

  /** The poll's windows: from the checkpoint (less the lookback) to today, sized by what the store knows. */
  private async pollWindows(sourceId: string) {
    const settings = this.settings(sourceId);
    const cfg = this.configOf(sourceId);
    const range = pollRange({
      today: todayIn(cfg.defaultTimezone, this.now()),
      lookbackDays: settings.lookbackDays,
      checkpoint: await this.store.checkpoints.get(sourceId, 'poll'),
      backfillFrom: settings.backfillFrom,
    });
    return windowPlanner(this.store, sourceId, settings, cfg, range.from, range.to);
  }

  backfill(
    sourceId: string,
    from: string,
    to: string,
    onProgress?: (p: BackfillProgress) => void,
  ): Promise<RunSummary> {
    const start = normalizeDate(from);
    const end = normalizeDate(to);
    if (start > end) return Promise.reject(new Error(`backfill range is empty: ${from} is after ${to}`));
    try {
      this.configOf(sourceId);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.backfills.start(sourceId, start, end, onProgress);
  }

  joinOpenWork(): Promise<RunSummary[]> {
    return this.backfills.joinOpen(this.sourceIds);
  }

  sweep(sourceId: string): Promise<RunSummary> {
    return this.exclusive({ sourceId, kind: 'sweep', body: (run, _runId, log) => this.runSweep(sourceId, run, log) });
  }

  reconcile(sourceId: string): Promise<RunSummary> {
    return this.sweep(sourceId);
  }

  async syncStudyUids(sourceId: string, uids: string[]): Promise<{ summary: RunSummary; missing: string[] }> {
    let missing: string[] = [];
    const summary = await this.exclusive({
      sourceId,
      kind: 'feed',
      body: async (run) => {
        const result = await run.syncStudyUids(uids);
        missing = result.missing;
        return { complete: result.complete };
      },
    });
    return { summary, missing };
  }

  /** The body of a sweep run: under the source's sweep budget, its warnings said afresh. */
  private runSweep(sourceId: string, run: StudySyncRun, log: Logger) {
    const settings = this.settings(sourceId);
    const cfg = this.configOf(sourceId);
    this.sourceLoggers.get(sourceId)?.reset();
    const pacer = new RequestPacer(sweepRate(settings.sweep, cfg.defaultTimezone));
    return runPaced(pacer, () =>
      sweepSource({
        run,
        store: this.store,
        sinks: this.options.sinks,
        source: this.source(sourceId),
        sourceConfig: cfg,
        settings,
        log,
        now: this.now,
        stopRequested: () => this.stopping,
      }),
    );
  }

  start(): void {
    this.stopping = false;
    this.feeds ??= feedSchedulerFor(this, {
      sources: [...this.configs.values()],
      store: this.store,
      log: this.log,
      now: this.now,
    });
    this.feeds.start();
    for (const sourceId of this.sourceIds) {
      const settings = this.settings(sourceId);
      this.schedulePoll(sourceId, settings.cron);
      this.scheduleSweep(sourceId);
      this.log.info({ source: sourceId, cron: settings.cron, sweep: sweepCron(settings) ?? null }, 'sync scheduled');
    }
    this.joinTimer ??= setInterval(() => {
      if (this.stopping) return;
      this.joinOpenWork().catch((err) => this.log.warn({ err: describeError(err) }, 'shared backfill not joined'));
    }, this.sync.coordination.workCheckSeconds * 1000);
    this.joinTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const c of this.crons.splice(0)) c.stop();
    clearInterval(this.joinTimer);
    this.joinTimer = undefined;
    await this.feeds?.stop();
    await this.lanes.settled();
  }

  /** The source's poll cron job; a poll still going, here or on another replica, is left to finish. */
  private schedulePoll(sourceId: string, cron: string): void {
    this.crons.push(
      new Cron(cron, { name: `poll:${sourceId}`, catch: true }, async () => {
        if (this.stopping) return;
        if (this.lanes.has(sourceId)) {
          this.log.info({ source: sourceId }, 'poll skipped: another run of this source is still going');
          return;
        }
        await this.runOnce(sourceId).catch((err) => {
          // Another replica polling this source is the normal case with several replicas, not an error.
          if (err instanceof SourceBusyError)
            this.log.info({ source: sourceId, holder: err.holder }, 'poll skipped: source busy');
          else this.log.error({ source: sourceId, err: describeError(err) }, 'poll could not start');
        });
      }),
    );
  }

  /** The sweep's own cron job; a sweep still going when it fires is left to finish. */
  private scheduleSweep(sourceId: string): void {
    const cron = sweepCron(this.settings(sourceId));
    if (!cron) return;
    this.crons.push(
      new Cron(cron, { name: `sweep:${sourceId}`, catch: true }, async () => {
        if (this.stopping || this.isSweeping(sourceId)) return;
        await this.sweep(sourceId).catch((err) =>
          this.log.error({ source: sourceId, err: describeError(err) }, 'sweep could not start'),
        );
      }),
    );
  }
}
