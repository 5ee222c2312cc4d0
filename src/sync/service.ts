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
import type { PacsSource, StudyWindow } from '../dicomweb/types';
import { createResourceGuard, mapStudy, studyFingerprint } from '../mapping';
import { silentLogger } from '../log';
import type { Sink } from '../sinks/sink';
import type { RunCounts, RunKind, RunStatus, Store } from '../sinks/store';
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
  store: Store;
  sinks: Sink[];
  /** Builds a PACS source from its configuration (src/dicomweb's createPacsSource by default). */
  sourceFactory?: (cfg: SourceConfig) => PacsSource;
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
  /** Schedules polls, sweeps and change-feed reads per source. */
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

function defaultSourceFactory(logger: Logger, loggers: SourceLoggers): (cfg: SourceConfig) => PacsSource {
  // The logger carries the source layer's "results may be missing" warnings (UIDs and windows only);
  // requests started inside a sweep wait for its budget (pacedRequest), others go at once.
  return (cfg) => {
    const once = warnOnce(logger);
    loggers.set(cfg.id, once);
    return createPacsSource(cfg, { logger: once, beforeRequest: pacedRequest });
  };
}

/** The run lane of a kind: a sweep runs beside the polls of its source, under a lease of its own. */
const laneOf = (sourceId: string, kind: RunKind) => (kind === 'sweep' ? `${sourceId}#sweep` : sourceId);

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

/** How long a run's lease on its source lasts without renewal; renewed at a third of it while the run goes on. */
const LEASE_TTL_MS = 60_000;
const LEASE_OWNER = `${os.hostname()}:${process.pid}`;

/** QIDO requests a source has made so far, all levels. */
function qidoRequestCount(stats: PacsSource['stats']): number {
  return stats.requests.studies + stats.requests.series + stats.requests.instances;
}

/** A lease holder on this host whose process is gone (killed, crashed) holds nothing. */
function holderIsDead(holder: string): boolean {
  const at = holder.lastIndexOf(':');
  if (holder.slice(0, at) !== os.hostname()) return false;
  const pid = Number(holder.slice(at + 1));
  if (!Number.isInteger(pid)) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export function createSyncService(options: SyncServiceOptions): SyncService {
  const sync = syncSchema.parse(options.config.sync ?? {});
  const store = options.store;
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
  let stopping = false;

  const configOf = (sourceId: string): SourceConfig => {
    const cfg = sourceConfigs.get(sourceId);
    if (!cfg) throw new Error(`unknown source "${sourceId}" (configured: ${[...sourceConfigs.keys()].join(', ')})`);
    return cfg;
  };
  const sourceOf = (sourceId: string): PacsSource => {
    let s = sources.get(sourceId);
    if (!s) {
      s = (options.sourceFactory ?? defaultSourceFactory(baseLog, sourceLoggers))(configOf(sourceId));
      sources.set(sourceId, s);
    }
    return s;
  };

  /** Runs `body` as a recorded run of one source, refusing to overlap another run of it. */
  function exclusive(
    sourceId: string,
    kind: RunKind,
    body: (
      run: StudySyncRun | undefined,
      runId: string,
      log: Logger,
    ) => Promise<{ complete: boolean; counts?: RunCounts }>,
    withRun = true,
    onSettled?: (n: number) => void,
  ): Promise<RunSummary> {
    configOf(sourceId);
    const lane = laneOf(sourceId, kind);
    if (running.has(lane)) return Promise.reject(new SourceBusyError(sourceId));
    // Across processes too (a `sync --once` beside the scheduled service): a lease in the store.
    const lease = store.acquireLease(lane, LEASE_OWNER, LEASE_TTL_MS, holderIsDead);
    if (!lease.ok) return Promise.reject(new SourceBusyError(sourceId, lease.holder));
    // Runs of this lane still marked running were left by a process that no longer holds the lease.
    store.closeAbandonedRuns(sourceId, kind === 'sweep' ? 'sweep' : 'other');
    const renew = setInterval(() => store.renewLease(lane, LEASE_OWNER, LEASE_TTL_MS), LEASE_TTL_MS / 3);
    renew.unref();
    const startedAt = now();
    const runId = store.startRun(sourceId, kind, startedAt);
    // QIDO requests through this source while the run lasted (under `serve`, API lookups meanwhile count too).
    const qidoRequests = () => qidoRequestCount(sourceOf(sourceId).stats);
    const requestsBefore = qidoRequests();
    const log = baseLog.child({ source: sourceId, runId, kind });
    const settings = syncSettingsFor(sync, sourceId);
    const run = withRun
      ? new StudySyncRun({
          runId,
          store,
          sinks: options.sinks,
          source: sourceOf(sourceId),
          sourceConfig: configOf(sourceId),
          settings,
          mapper,
          log,
          now,
          stopRequested: () => stopping,
          onStudiesSettled: onSettled,
        })
      : undefined;
    const promise = (async (): Promise<RunSummary> => {
      log.info('run started');
      let status: RunSummary['status'];
      let error: string | undefined;
      let counts: RunCounts;
      try {
        const result = await body(run, runId, log);
        counts = { ...(run?.counts ?? {}), ...(result.counts ?? {}) };
        // A newly quarantined study was not synced either: the run is partial, so a scheduler notices.
        const notSynced = (counts.failed ?? 0) + (counts.quarantined ?? 0);
        status = !result.complete ? 'interrupted' : notSynced > 0 ? 'partial' : 'ok';
      } catch (err) {
        counts = { ...(run?.counts ?? {}) };
        status = 'failed';
        error = describeError(err);
        if (isRunOutage(err))
          log.warn(
            { err: error },
            `run ended early: ${err instanceof SinkUnavailableError ? 'sink' : 'PACS'} unavailable`,
          );
        else log.error({ err: error }, 'run failed');
      }
      counts.qidoRequests = qidoRequests() - requestsBefore;
      const endedAt = now();
      store.finishRun(runId, { status, counts, error, at: endedAt });
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
    })();
    running.set(lane, promise);
    return promise.finally(() => {
      clearInterval(renew);
      store.releaseLease(lane, LEASE_OWNER);
      running.delete(lane);
    });
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

  const service: SyncService = {
    sourceIds: [...sourceConfigs.keys()],

    runOnce(sourceId, opts = {}) {
      return exclusive(sourceId, 'poll', async (run) => {
        const settings = syncSettingsFor(sync, sourceId);
        const today = todayFor(sourceId);
        const range = pollRange({
          today,
          lookbackDays: settings.lookbackDays,
          checkpoint: store.getCheckpoint(sourceId, 'poll'),
          backfillFrom: settings.backfillFrom,
        });
        // Once a window is done, every study in it is written, unchanged, or recorded for retry.
        const windows = windowPlanner(store, sourceId, settings, configOf(sourceId), range.from, range.to);
        if (
          stopping ||
          !(await run!.syncWindows(windows, { onWindowDone: (w) => store.advanceCheckpoint(sourceId, w.to, 'poll') }))
        )
          return { complete: false };
        // The undated studies are the sweep's: listing them costs a scan of every study.
        if (opts.undated && !(await run!.syncUndated())) return { complete: false };
        if ((opts.retries ?? true) && !(await run!.syncDueRetries())) return { complete: false };
        return { complete: true };
      });
    },

    backfill(sourceId, from, to, onProgress) {
      const start = normalizeDate(from);
      const end = normalizeDate(to);
      if (start > end) return Promise.reject(new Error(`backfill range is empty: ${from} is after ${to}`));
      const checkpointName = `backfill:${start}-${end}`;
      let studiesDone = 0;
      let progress: BackfillProgress = { sourceId, runId: '', windowsDone: 0, windowsTotal: 0, studiesDone: 0 };
      const report = () => onProgress?.({ ...progress, studiesDone });
      return exclusive(
        sourceId,
        'backfill',
        async (run, runId) => {
          const settings = syncSettingsFor(sync, sourceId);
          const windows = planWindows(start, end, settings.windowDays);
          // Resume: windows through the checkpoint of this same backfill are complete.
          const through = store.getCheckpoint(sourceId, checkpointName);
          const remaining = through ? windows.filter((w) => w.to > through) : windows;
          progress = {
            sourceId,
            runId,
            windowsDone: windows.length - remaining.length,
            windowsTotal: windows.length,
            studiesDone: 0,
          };
          report();
          const windowsDone = (window: StudyWindow) => {
            store.advanceCheckpoint(sourceId, window.to, checkpointName);
            progress.windowsDone++;
            report();
          };
          if (
            stopping ||
            !(await run!.syncWindows(remaining, {
              onWindowStart: (w) => (progress.window = w),
              onWindowDone: windowsDone,
            }))
          )
            return { complete: false };
          if (!(await run!.syncDueRetries())) return { complete: false };
          return { complete: true };
        },
        true,
        (n) => {
          studiesDone += n;
          report();
        },
      );
    },

    sweep(sourceId) {
      return exclusive(sourceId, 'sweep', (run, _runId, log) => runSweep(sourceId, run!, log));
    },

    reconcile(sourceId) {
      return service.sweep(sourceId);
    },

    async syncStudyUids(sourceId, uids) {
      let missing: string[] = [];
      const summary = await exclusive(sourceId, 'feed', async (run) => {
        const result = await run!.syncStudyUids(uids);
        missing = result.missing;
        return { complete: result.complete };
      });
      return { summary, missing };
    },

    start() {
      stopping = false;
      feeds ??= feedSchedulerFor(service, { sources: [...sourceConfigs.values()], store, log: baseLog, now });
      feeds.start();
      for (const sourceId of sourceConfigs.keys()) {
        const settings = syncSettingsFor(sync, sourceId);
        const schedule = (expr: string, what: string, fn: () => Promise<RunSummary>) => {
          crons.push(
            new Cron(expr, { name: `${what}:${sourceId}`, catch: true }, async () => {
              if (stopping) return;
              if (running.has(sourceId)) {
                baseLog.info({ source: sourceId }, `${what} skipped: another run of this source is still going`);
                return;
              }
              await fn().catch((err) =>
                baseLog.error({ source: sourceId, err: describeError(err) }, `${what} could not start`),
              );
            }),
          );
        };
        schedule(settings.cron, 'poll', () => service.runOnce(sourceId));
        scheduleSweep(sourceId);
        baseLog.info({ source: sourceId, cron: settings.cron, sweep: sweepCron(settings) ?? null }, 'sync scheduled');
      }
    },

    async stop() {
      stopping = true;
      for (const c of crons.splice(0)) c.stop();
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
