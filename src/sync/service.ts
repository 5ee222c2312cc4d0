/**
 * The sync service: runs polls, backfills and reconciles per source, on demand or on a cron schedule,
 * never two at once for one source, and stops gracefully (the batch in hand is finished and recorded,
 * checkpoints stay where the last complete window left them).
 */
import os from 'node:os';
import { Cron } from 'croner';
import type { Logger } from 'pino';
import type { SourceConfig } from '../config';
import { createPacsSource } from '../dicomweb';
import type { OutboundMetrics } from '../http';
import type { PacsSource, StudyWindow } from '../dicomweb/types';
import { createResourceGuard, mapStudy, studyFingerprint } from '../mapping';
import { silentLogger } from '../log';
import type { Sink } from '../sinks/sink';
import type { RunCounts, RunKind, RunStatus, StateStore } from '../state';
import {
  sweepCron,
  syncSchema,
  syncSettingsFor,
  type SyncConfig,
  type SyncConfigInput,
  type SyncSettings,
} from './config';
import { todayIn } from '../time';
import { planWindows, pollRange } from './dates';
import { describeError, isRunOutage, SinkUnavailableError, SourceBusyError } from './errors';
import { feedSchedulerFor, type FeedScheduler } from './feedSchedule';
import { studyUidOf } from '../dicomweb/dicomJson';
import { StudySyncRun, type StudyMapper } from './run';
import { sweepSource, windowPlanner } from './sweep';
import { backfillJob, ClaimedWindows, parseBackfillJob, WorkClaims, type BackfillJob } from './work';
import { pacedRequest, RequestPacer, runPaced, sweepRate, warnOnce } from './sweepPace';

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
  /** Syncs StudyDate from..to (YYYYMMDD or YYYY-MM-DD); resumes where an interrupted identical backfill stopped. */
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
 * The run lane of a kind: a sweep runs beside the polls of its source, under a lease of its own; a backfill
 * job's runs (one per process working on it) beside both, its windows claimed one by one.
 */
const laneOf = (sourceId: string, kind: RunKind, job?: string) =>
  job ? `${sourceId}#${job}` : kind === 'sweep' ? `${sourceId}#sweep` : sourceId;

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

/**
 * Which machine holds a lease: the host name (a pod's name on Kubernetes), or BRIDGE_INSTANCE_NAME where host
 * names are not unique across replicas (containers with a fixed hostname).
 */
const INSTANCE = process.env.BRIDGE_INSTANCE_NAME || os.hostname();
const LEASE_OWNER = `${INSTANCE}:${process.pid}`;

/** QIDO requests a source has made so far, all levels. */
function qidoRequestCount(stats: PacsSource['stats']): number {
  return stats.requests.studies + stats.requests.series + stats.requests.instances;
}

/** A lease holder on this host whose process is gone (killed, crashed) holds nothing. */
function holderIsDead(holder: string): boolean {
  const at = holder.lastIndexOf(':');
  if (holder.slice(0, at) !== INSTANCE) return false;
  const pid = Number(holder.slice(at + 1));
  if (!Number.isInteger(pid)) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** What `exclusive` runs: a run of one kind on one source, and who hears of studies settled. */
interface ExclusiveRun {
  sourceId: string;
  kind: RunKind;
  /** A shared job (a backfill) whose work items are claimed one by one: no lease on the source. */
  job?: string;
  body: (run: StudySyncRun, runId: string, log: Logger) => Promise<{ complete: boolean; counts?: RunCounts }>;
  onSettled?: (n: number) => void;
}

/** A run body's result as the run's status: interrupted when stopped, partial when a study was not synced. */
async function outcomeOf(
  body: () => Promise<{ complete: boolean; counts?: RunCounts }>,
  run: StudySyncRun,
  log: Logger,
): Promise<{ status: RunSummary['status']; counts: RunCounts; error?: string }> {
  try {
    const result = await body();
    const counts = { ...run.counts, ...(result.counts ?? {}) };
    // A newly quarantined study was not synced either: the run is partial, so a scheduler notices.
    const notSynced = (counts.failed ?? 0) + (counts.quarantined ?? 0);
    return { status: !result.complete ? 'interrupted' : notSynced > 0 ? 'partial' : 'ok', counts };
  } catch (err) {
    const error = describeError(err);
    if (isRunOutage(err))
      log.warn({ err: error }, `run ended early: ${err instanceof SinkUnavailableError ? 'sink' : 'PACS'} unavailable`);
    else log.error({ err: error }, 'run failed');
    return { status: 'failed', counts: { ...run.counts }, error };
  }
}

export function createSyncService(options: SyncServiceOptions): SyncService {
  const sync = syncSchema.parse(options.config.sync ?? {});
  const store = options.store;
  // A run's lease on its lane and a claim on a work item: renewed at a third of it while the work goes on.
  const leaseMs = sync.coordination.leaseSeconds * 1000;
  const baseLog = options.logger ?? silentLogger;
  const now = options.now ?? (() => new Date());
  const mapper = options.mapper ?? defaultMapper(options.validateResources ?? false);
  const sourceConfigs = new Map(options.config.sources.map((s) => [s.id, s]));
  // One PacsSource per source for the service's life, so capability probes and tokens are reused.
  const sources = new Map<string, PacsSource>();
  const sourceLoggers: SourceLoggers = new Map();
  const running = new Map<string, Promise<RunSummary>>();
  const crons: Cron[] = [];
  let feeds: FeedScheduler | undefined;
  let joinTimer: NodeJS.Timeout | undefined;
  let stopping = false;

  const configOf = (sourceId: string): SourceConfig => {
    const cfg = sourceConfigs.get(sourceId);
    if (!cfg) throw new Error(`unknown source "${sourceId}" (configured: ${[...sourceConfigs.keys()].join(', ')})`);
    return cfg;
  };
  const sourceOf = (sourceId: string): PacsSource => {
    let s = sources.get(sourceId);
    if (!s) {
      s = (options.sourceFactory ?? defaultSourceFactory(baseLog, sourceLoggers, options.metrics))(configOf(sourceId));
      sources.set(sourceId, s);
    }
    return s;
  };

  /** Runs `body` as a recorded run of one source, refusing to overlap another run of its lane. */
  function exclusive(o: ExclusiveRun): Promise<RunSummary> {
    configOf(o.sourceId);
    const lane = laneOf(o.sourceId, o.kind, o.job);
    if (running.has(lane)) return Promise.reject(new SourceBusyError(o.sourceId));
    const promise = o.job ? recordedRun(o) : leased(lane, o);
    running.set(lane, promise);
    return promise.finally(() => running.delete(lane));
  }

  /** Across processes and replicas too (a `sync --once` beside the service, a second replica): a lease in the store. */
  async function leased(lane: string, o: ExclusiveRun): Promise<RunSummary> {
    const lease = await store.runs.acquireLease(lane, LEASE_OWNER, leaseMs, holderIsDead);
    if (!lease.ok) throw new SourceBusyError(o.sourceId, lease.holder);
    const renew = setInterval(() => {
      store.runs
        .renewLease(lane, LEASE_OWNER, leaseMs)
        .catch((err) => baseLog.warn({ lane, err: describeError(err) }, 'run lease not renewed'));
    }, leaseMs / 3);
    renew.unref();
    try {
      // Runs of this lane still marked running were left by a process that no longer holds the lease.
      await store.runs.closeAbandonedRuns(o.sourceId, o.kind === 'sweep' ? 'sweep' : 'other');
      return await recordedRun(o);
    } finally {
      clearInterval(renew);
      await store.runs.releaseLease(lane, LEASE_OWNER).catch(() => undefined);
    }
  }

  /** One run, recorded from start to finish: its counts, status and error end up in the run history. */
  async function recordedRun(o: ExclusiveRun): Promise<RunSummary> {
    const { sourceId, kind } = o;
    const startedAt = now();
    const runId = await store.runs.startRun(sourceId, kind, startedAt, LEASE_OWNER);
    // QIDO requests through this source while the run lasted (under `serve`, API lookups meanwhile count too).
    const qidoRequests = () => qidoRequestCount(sourceOf(sourceId).stats);
    const requestsBefore = qidoRequests();
    const log = baseLog.child({ source: sourceId, runId, kind });
    const run = new StudySyncRun({
      runId,
      store,
      sinks: options.sinks,
      source: sourceOf(sourceId),
      sourceConfig: configOf(sourceId),
      settings: syncSettingsFor(sync, sourceId),
      mapper,
      log,
      now,
      stopRequested: () => stopping,
      onStudiesSettled: o.onSettled,
    });
    log.info('run started');
    const { status, counts, error } = await outcomeOf(() => o.body(run, runId, log), run, log);
    counts.qidoRequests = qidoRequests() - requestsBefore;
    const endedAt = now();
    await store.runs.finishRun(runId, { status, counts, error, at: endedAt });
    log.info({ status, ...counts }, 'run finished');
    return {
      runId,
      sourceId,
      kind,
      status,
      counts,
      ...(error ? { error } : {}),
      startedAt: startedAt.toISOString(),
      endedAt: endedAt.toISOString(),
    };
  }

  const todayFor = (sourceId: string) => todayIn(configOf(sourceId).defaultTimezone, now());

  /** The body of a sweep run: under the source's sweep budget, its warnings said afresh. */
  function runSweep(sourceId: string, run: StudySyncRun, log: Logger) {
    const settings = syncSettingsFor(sync, sourceId);
    const cfg = configOf(sourceId);
    sourceLoggers.get(sourceId)?.reset();
    const pacer = new RequestPacer(sweepRate(settings.sweep, cfg.defaultTimezone));
    return runPaced(pacer, () =>
      sweepSource({
        run,
        store,
        sinks: options.sinks,
        source: sourceOf(sourceId),
        sourceConfig: cfg,
        settings,
        log,
        now,
        stopRequested: () => stopping,
      }),
    );
  }

  /** The source's poll cron job; a poll still going, here or on another replica, is left to finish. */
  function schedulePoll(sourceId: string, cron: string): void {
    crons.push(
      new Cron(cron, { name: `poll:${sourceId}`, catch: true }, async () => {
        if (stopping) return;
        if (running.has(sourceId)) {
          baseLog.info({ source: sourceId }, 'poll skipped: another run of this source is still going');
          return;
        }
        await service.runOnce(sourceId).catch((err) => {
          // Another replica polling this source is the normal case with several replicas, not an error.
          if (err instanceof SourceBusyError)
            baseLog.info({ source: sourceId, holder: err.holder }, 'poll skipped: source busy');
          else baseLog.error({ source: sourceId, err: describeError(err) }, 'poll could not start');
        });
      }),
    );
  }

  /** The sweep's own cron job; a sweep still going when it fires is left to finish. */
  function scheduleSweep(sourceId: string): void {
    const cron = sweepCron(syncSettingsFor(sync, sourceId));
    if (!cron) return;
    crons.push(
      new Cron(cron, { name: `sweep:${sourceId}`, catch: true }, async () => {
        if (stopping || running.has(laneOf(sourceId, 'sweep'))) return;
        await service
          .sweep(sourceId)
          .catch((err) => baseLog.error({ source: sourceId, err: describeError(err) }, 'sweep could not start'));
      }),
    );
  }

  /** Backfill runs of this source left 'running' by processes on this host that are gone (killed). */
  async function closeDeadBackfillRuns(sourceId: string): Promise<void> {
    const running = (await store.runs.listRuns(sourceId, 100, 'backfill')).filter((r) => r.status === 'running');
    const dead = [...new Set(running.map((r) => r.owner).filter((o): o is string => !!o && holderIsDead(o)))];
    await store.runs.closeRunsOf(dead, 'backfill');
  }

  /**
   * Claims the job's windows one at a time and syncs each, as one run of this process, until none is left
   * to claim; then waits for windows other processes hold, taking over any whose claim expires (a dead
   * replica's). No store lease: the claims are the lock, so replicas share a backfill instead of queueing.
   */
  function workOn(sourceId: string, job: BackfillJob, onProgress?: (p: BackfillProgress) => void) {
    let studiesDone = 0;
    let progress: BackfillProgress = { sourceId, runId: '', windowsDone: 0, windowsTotal: 0, studiesDone: 0 };
    const report = async (runId: string, window?: StudyWindow) => {
      const p = await store.work.progress(job.name);
      progress = { sourceId, runId, windowsDone: p.done, windowsTotal: p.pending + p.claimed + p.done, studiesDone };
      if (window) progress.window = window;
      onProgress?.(progress);
    };
    return exclusive({
      sourceId,
      kind: 'backfill',
      job: job.name,
      onSettled: (n) => {
        studiesDone += n;
        onProgress?.({ ...progress, studiesDone });
      },
      body: async (run, runId) => {
        await report(runId);
        const claims = new WorkClaims(store.work, job.name, LEASE_OWNER, leaseMs, baseLog, {
          isAbandoned: holderIsDead,
          // A holder whose claim was retaken is dead: its backfill run is over, whatever its row still says.
          onHolderGone: (holder) => store.runs.closeRunsOf([holder], 'backfill').then(() => undefined),
        });
        await closeDeadBackfillRuns(sourceId);
        const windows = new ClaimedWindows(claims, () => stopping);
        const hooks = {
          onWindowStart: (w: StudyWindow) => void report(runId, w),
          onWindowDone: async (w: StudyWindow) => {
            await windows.done(w);
            await store.checkpoints.advance(sourceId, w.to, job.checkpoint);
            await report(runId);
          },
        };
        try {
          // Until the whole job is done: windows others hold are taken over here if their holder dies.
          do {
            if (stopping || !(await run.syncWindows(windows, hooks))) return { complete: false };
          } while (await claims.othersStillWorking());
        } finally {
          await windows.close();
        }
        if (!(await run.syncDueRetries())) return { complete: false };
        return { complete: true };
      },
    });
  }

  const service: SyncService = {
    sourceIds: [...sourceConfigs.keys()],

    runOnce(sourceId, opts = {}) {
      return exclusive({
        sourceId,
        kind: 'poll',
        body: async (run) => {
          const settings = syncSettingsFor(sync, sourceId);
          const range = pollRange({
            today: todayFor(sourceId),
            lookbackDays: settings.lookbackDays,
            checkpoint: await store.checkpoints.get(sourceId, 'poll'),
            backfillFrom: settings.backfillFrom,
          });
          // Once a window is done, every study in it is written, unchanged, or recorded for retry.
          const windows = await windowPlanner(store, sourceId, settings, configOf(sourceId), range.from, range.to);
          const advance = (w: StudyWindow) => store.checkpoints.advance(sourceId, w.to, 'poll');
          if (stopping || !(await run.syncWindows(windows, { onWindowDone: advance }))) return { complete: false };
          // The undated studies are the sweep's: listing them costs a scan of every study.
          if (opts.undated && !(await run.syncUndated())) return { complete: false };
          if ((opts.retries ?? true) && !(await run.syncDueRetries())) return { complete: false };
          return { complete: true };
        },
      });
    },

    backfill(sourceId, from, to, onProgress) {
      const start = normalizeDate(from);
      const end = normalizeDate(to);
      if (start > end) return Promise.reject(new Error(`backfill range is empty: ${from} is after ${to}`));
      configOf(sourceId);
      const job = backfillJob(sourceId, start, end);
      // The windows become work items; a replica (or a second command) starting the same backfill joins it.
      const prepared = (async () => {
        const windows = planWindows(start, end, syncSettingsFor(sync, sourceId).windowDays);
        // A backfill interrupted before work items existed resumes after its checkpoint.
        const through = await store.checkpoints.get(sourceId, job.checkpoint);
        await store.work.enqueue(
          job.name,
          sourceId,
          windows.map((w) => ({ payload: { from: w.from, to: w.to }, done: !!through && w.to <= through })),
        );
      })();
      return prepared.then(() => workOn(sourceId, job, onProgress));
    },

    sweep(sourceId) {
      return exclusive({ sourceId, kind: 'sweep', body: (run, _runId, log) => runSweep(sourceId, run, log) });
    },

    reconcile(sourceId) {
      return service.sweep(sourceId);
    },

    async syncStudyUids(sourceId, uids) {
      let missing: string[] = [];
      const summary = await exclusive({
        sourceId,
        kind: 'feed',
        body: async (run) => {
          const result = await run.syncStudyUids(uids);
          missing = result.missing;
          return { complete: result.complete };
        },
      });
      return { summary, missing };
    },

    async joinOpenWork() {
      const joined: Promise<RunSummary>[] = [];
      for (const open of await store.work.openJobs([...sourceConfigs.keys()])) {
        const job = parseBackfillJob(open.job);
        if (!job || stopping || running.has(laneOf(job.sourceId, 'backfill', job.name))) continue;
        joined.push(workOn(job.sourceId, job));
      }
      return Promise.all(joined);
    },

    start() {
      stopping = false;
      feeds ??= feedSchedulerFor(service, { sources: [...sourceConfigs.values()], store, log: baseLog, now });
      feeds.start();
      for (const sourceId of sourceConfigs.keys()) {
        const settings = syncSettingsFor(sync, sourceId);
        schedulePoll(sourceId, settings.cron);
        scheduleSweep(sourceId);
        baseLog.info({ source: sourceId, cron: settings.cron, sweep: sweepCron(settings) ?? null }, 'sync scheduled');
      }
      joinTimer ??= setInterval(() => {
        if (!stopping)
          service
            .joinOpenWork()
            .catch((err) => baseLog.warn({ err: describeError(err) }, 'shared backfill not joined'));
      }, sync.coordination.workCheckSeconds * 1000);
      joinTimer.unref();
    },

    async stop() {
      stopping = true;
      for (const c of crons.splice(0)) c.stop();
      clearInterval(joinTimer);
      joinTimer = undefined;
      await feeds?.stop();
      await Promise.allSettled([...running.values()]);
    },

    isRunning: (sourceId) => running.has(sourceId),
    isSweeping: (sourceId) => running.has(laneOf(sourceId, 'sweep')),
    source: sourceOf,
    settings: (sourceId) => syncSettingsFor(sync, sourceId),
  };
  return service;
}
