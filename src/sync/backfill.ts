/**
 * Shared backfills: a StudyDate range becomes work items (its windows) in the store, and every process that
 * starts the same backfill, or finds it open (`serve` looks every sync.coordination.workCheckSeconds), claims
 * windows one at a time. No source lease: the claims are the lock, so replicas share a backfill instead of
 * queueing for it, and a dead holder's windows are retaken once its claims lapse.
 */
import type { Logger } from 'pino';
import type { StudyWindow } from '../dicomweb';
import type { StateStore } from '../state';
import { planWindows } from './dates';
import type { RunLanes } from './lanes';
import { laneOf } from './lanes';
import { ownerIsDead, PROCESS_OWNER } from './owner';
import type { StudySyncRun } from './run';
import type { BackfillProgress, RunSummary } from './types';
import { backfillJob, ClaimedWindows, parseBackfillJob, WorkClaims, type BackfillJob } from './work';

export interface SharedBackfillsDeps {
  store: StateStore;
  lanes: RunLanes;
  /** A claim lasts this long unless renewed. */
  leaseMs: number;
  log: Logger;
  stopRequested: () => boolean;
  windowDays: (sourceId: string) => number;
}

export class SharedBackfills {
  constructor(private readonly deps: SharedBackfillsDeps) {}

  /** Backfills start..end (YYYYMMDD) of a source, with whoever else works on the same range. */
  async start(
    sourceId: string,
    start: string,
    end: string,
    onProgress?: (p: BackfillProgress) => void,
  ): Promise<RunSummary> {
    const { store } = this.deps;
    const job = backfillJob(sourceId, start, end);
    const windows = planWindows(start, end, this.deps.windowDays(sourceId));
    // A backfill interrupted before work items existed resumes after its checkpoint.
    const through = await store.checkpoints.get(sourceId, job.checkpoint);
    // A replica (or a second command) starting the same backfill joins the items already there.
    await store.work.enqueue(
      job.name,
      sourceId,
      windows.map((w) => ({ payload: { from: w.from, to: w.to }, done: !!through && w.to <= through })),
    );
    return this.workOn(job, onProgress);
  }

  /** Works on the open backfills of these sources that this process is not already working on. */
  async joinOpen(sourceIds: string[]): Promise<RunSummary[]> {
    const joined: Promise<RunSummary>[] = [];
    for (const open of await this.deps.store.work.openJobs(sourceIds)) {
      const job = parseBackfillJob(open.job);
      if (!job || this.deps.stopRequested() || this.deps.lanes.has(laneOf(job.sourceId, 'backfill', job.name)))
        continue;
      joined.push(this.workOn(job));
    }
    return Promise.all(joined);
  }

  /** One run of this process on the job: windows claimed until none is left, then the due retries. */
  private workOn(job: BackfillJob, onProgress?: (p: BackfillProgress) => void): Promise<RunSummary> {
    const progress = new ProgressReport(this.deps.store, job, onProgress);
    return this.deps.lanes.run({
      sourceId: job.sourceId,
      kind: 'backfill',
      job: job.name,
      onSettled: (n) => progress.settled(n),
      body: async (run, runId) => {
        await progress.report(runId);
        if (!(await this.claimWindows(run, runId, job, progress))) return { complete: false };
        return { complete: await run.syncDueRetries() };
      },
    });
  }

  /** Syncs claimed windows until the whole job is done; those others hold are retaken if their holder dies. */
  private async claimWindows(run: StudySyncRun, runId: string, job: BackfillJob, progress: ProgressReport) {
    const { store, stopRequested } = this.deps;
    const claims = new WorkClaims(store.work, job.name, PROCESS_OWNER, this.deps.leaseMs, this.deps.log, {
      isAbandoned: ownerIsDead,
      // A holder whose claim was retaken is dead: its backfill run is over, whatever its row still says.
      onHolderGone: (holder) => store.runs.closeRunsOf([holder], 'backfill').then(() => undefined),
    });
    await this.closeDeadRuns(job.sourceId);
    const windows = new ClaimedWindows(claims, stopRequested);
    const hooks = {
      onWindowStart: (w: StudyWindow) => void progress.report(runId, w),
      onWindowDone: async (w: StudyWindow) => {
        await windows.done(w);
        await store.checkpoints.advance(job.sourceId, w.to, job.checkpoint);
        await progress.report(runId);
      },
    };
    try {
      do {
        if (stopRequested() || !(await run.syncWindows(windows, hooks))) return false;
      } while (await claims.othersStillWorking());
      return true;
    } finally {
      await windows.close();
    }
  }

  /** Backfill runs of this source left 'running' by processes on this machine that are gone (killed). */
  private async closeDeadRuns(sourceId: string): Promise<void> {
    const runs = await this.deps.store.runs.listRuns(sourceId, 100, 'backfill');
    const owners = runs.filter((r) => r.status === 'running').map((r) => r.owner);
    const dead = [...new Set(owners.filter((o): o is string => !!o && ownerIsDead(o)))];
    await this.deps.store.runs.closeRunsOf(dead, 'backfill');
  }
}

/** A backfill's progress as the caller sees it: the job's windows done (by anyone) and this run's studies. */
class ProgressReport {
  private studiesDone = 0;
  private last: BackfillProgress;

  constructor(
    private readonly store: StateStore,
    private readonly job: BackfillJob,
    private readonly onProgress?: (p: BackfillProgress) => void,
  ) {
    this.last = { sourceId: job.sourceId, runId: '', windowsDone: 0, windowsTotal: 0, studiesDone: 0 };
  }

  async report(runId: string, window?: StudyWindow): Promise<void> {
    const p = await this.store.work.progress(this.job.name);
    this.last = {
      sourceId: this.job.sourceId,
      runId,
      windowsDone: p.done,
      windowsTotal: p.pending + p.claimed + p.done,
      studiesDone: this.studiesDone,
      ...(window ? { window } : {}),
    };
    this.onProgress?.(this.last);
  }

  settled(n: number): void {
    this.studiesDone += n;
    this.onProgress?.({ ...this.last, studiesDone: this.studiesDone });
  }
}
