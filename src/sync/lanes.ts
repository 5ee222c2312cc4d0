/**
 * Run lanes: never two runs of one lane at once, in this process (a map of runs in progress) and across
 * processes and replicas (a lease in the store, renewed while the run lasts). Every run is recorded from
 * start to finish in the run history. A sweep has a lane of its own beside the polls of its source; a shared
 * backfill job's runs take no lease (its work items are the lock: src/sync/backfill.ts).
 */
import type { Logger } from 'pino';
import type { RunCounts, RunKind, StateStore } from '../state';
import { describeError, isRunOutage, SinkUnavailableError, SourceBusyError } from './errors';
import { ownerIsDead, PROCESS_OWNER } from './owner';
import type { StudySyncRun } from './run';
import type { RunSummary } from './types';

/** The lane of a run: a sweep beside the polls of its source; a shared job's runs beside both. */
export const laneOf = (sourceId: string, kind: RunKind, job?: string) =>
  job ? `${sourceId}#${job}` : kind === 'sweep' ? `${sourceId}#sweep` : sourceId;

/** A run of one kind on one source: its body, and who hears of studies settled. */
export interface LaneRun {
  sourceId: string;
  kind: RunKind;
  /** A shared job (a backfill) whose work items are claimed one by one: no lease on the source. */
  job?: string;
  body: (run: StudySyncRun, runId: string, log: Logger) => Promise<{ complete: boolean; counts?: RunCounts }>;
  onSettled?: (n: number) => void;
}

export interface RunLanesDeps {
  store: StateStore;
  /** A lease lasts this long unless renewed (at a third of it). */
  leaseMs: number;
  log: Logger;
  now: () => Date;
  /** The run engine for one run of a source. */
  newRun: (o: LaneRun, runId: string, log: Logger) => StudySyncRun;
  /** QIDO requests the source has made so far: a run's own are the difference. */
  qidoRequests: (sourceId: string) => number;
}

export class RunLanes {
  private readonly running = new Map<string, Promise<RunSummary>>();

  constructor(private readonly deps: RunLanesDeps) {}

  has(lane: string): boolean {
    return this.running.has(lane);
  }

  /** Waits for every run in progress to settle. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }

  /** Runs `o` as a recorded run, refusing to overlap another run of its lane here or elsewhere. */
  run(o: LaneRun): Promise<RunSummary> {
    const lane = laneOf(o.sourceId, o.kind, o.job);
    if (this.running.has(lane)) return Promise.reject(new SourceBusyError(o.sourceId));
    const promise = o.job ? this.recorded(o) : this.leased(lane, o);
    this.running.set(lane, promise);
    return promise.finally(() => this.running.delete(lane));
  }

  private async leased(lane: string, o: LaneRun): Promise<RunSummary> {
    const { store, leaseMs, log } = this.deps;
    const lease = await store.runs.acquireLease(lane, PROCESS_OWNER, leaseMs, ownerIsDead);
    if (!lease.ok) throw new SourceBusyError(o.sourceId, lease.holder);
    const renew = setInterval(() => {
      store.runs
        .renewLease(lane, PROCESS_OWNER, leaseMs)
        .catch((err) => log.warn({ lane, err: describeError(err) }, 'run lease not renewed'));
    }, leaseMs / 3);
    renew.unref();
    try {
      // Runs of this lane still marked running were left by a process that no longer holds the lease.
      await store.runs.closeAbandonedRuns(o.sourceId, o.kind === 'sweep' ? 'sweep' : 'other');
      return await this.recorded(o);
    } finally {
      clearInterval(renew);
      await store.runs.releaseLease(lane, PROCESS_OWNER).catch(() => undefined);
    }
  }

  /** One run, recorded from start to finish: its counts, status and error end up in the run history. */
  private async recorded(o: LaneRun): Promise<RunSummary> {
    const { store, now } = this.deps;
    const { sourceId, kind } = o;
    const startedAt = now();
    const runId = await store.runs.startRun(sourceId, kind, startedAt, PROCESS_OWNER);
    // QIDO requests through this source while the run lasted (under `serve`, API lookups meanwhile count too).
    const requestsBefore = this.deps.qidoRequests(sourceId);
    const log = this.deps.log.child({ source: sourceId, runId, kind });
    const run = this.deps.newRun(o, runId, log);
    log.info('run started');
    const { status, counts, error } = await outcomeOf(() => o.body(run, runId, log), run, log);
    counts.qidoRequests = this.deps.qidoRequests(sourceId) - requestsBefore;
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
    // A newly quarantined study was not synced either, and held removals wait for a person: the run is partial,
    // so a scheduler notices.
    const notSynced = (counts.failed ?? 0) + (counts.quarantined ?? 0) + ((counts as RunCounts).held ?? 0);
    return { status: !result.complete ? 'interrupted' : notSynced > 0 ? 'partial' : 'ok', counts };
  } catch (err) {
    const error = describeError(err);
    if (isRunOutage(err))
      log.warn({ err: error }, `run ended early: ${err instanceof SinkUnavailableError ? 'sink' : 'PACS'} unavailable`);
    else log.error({ err: error }, 'run failed');
    return { status: 'failed', counts: { ...run.counts }, error };
  }
}
