/**
 * Shared work: a backfill's windows as work items in the store, claimed one at a time by whichever
 * process (or replica) works on the job, each claim renewed while its window syncs and retaken by another
 * process when its holder dies and stops renewing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { WorkItem, WorkQueue } from '../state';
import { describeError } from './errors';

export interface BackfillJob {
  /** The job's name in the work queue: `backfill:<source>:<from>-<to>`. */
  name: string;
  sourceId: string;
  /** The checkpoint an interrupted backfill from before work items recorded its progress under. */
  checkpoint: string;
}

export function backfillJob(sourceId: string, from: string, to: string): BackfillJob {
  return { name: `backfill:${sourceId}:${from}-${to}`, sourceId, checkpoint: `backfill:${from}-${to}` };
}

/** The job a work-queue name stands for; undefined for a name this bridge does not know. */
export function parseBackfillJob(name: string): BackfillJob | undefined {
  const m = /^backfill:(.+):(\d{8})-(\d{8})$/.exec(name);
  return m ? backfillJob(m[1]!, m[2]!, m[3]!) : undefined;
}

/** How long a process with nothing left to claim waits before looking again at windows others hold. */
const MAX_IDLE_WAIT_MS = 2_000;

/** One process's claims on one job. */
export class WorkClaims {
  constructor(
    private readonly queue: WorkQueue,
    private readonly job: string,
    private readonly owner: string,
    private readonly leaseMs: number,
    private readonly log: Logger,
  ) {}

  /**
   * The next window to work on. When none is free but others still hold some, waits: a holder that dies
   * stops renewing, and its window is retaken here once the claim expires. Undefined when all are done.
   */
  async next(stopRequested: () => boolean): Promise<WorkItem | undefined> {
    for (;;) {
      if (stopRequested()) return undefined;
      const item = await this.queue.claim(this.job, this.owner, this.leaseMs);
      if (item) return item;
      const { pending, claimed } = await this.queue.progress(this.job);
      if (pending + claimed === 0) return undefined;
      await sleep(Math.min(MAX_IDLE_WAIT_MS, this.leaseMs / 4));
    }
  }

  /** Runs `work` under the item's claim, renewed meanwhile: done when it returns true, else given back. */
  async hold(item: WorkItem, work: () => Promise<boolean>): Promise<boolean> {
    const renew = setInterval(() => {
      this.queue.renew(item.id, this.owner, this.leaseMs).then(
        (kept) => kept || this.log.warn({ job: this.job, item: item.id }, 'work item claim lost to another process'),
        (err) =>
          this.log.warn({ job: this.job, item: item.id, err: describeError(err) }, 'work item claim not renewed'),
      );
    }, this.leaseMs / 3);
    renew.unref();
    let done = false;
    try {
      done = await work();
      return done;
    } finally {
      clearInterval(renew);
      await (done ? this.queue.complete(item.id, this.owner) : this.queue.release(item.id, this.owner));
    }
  }
}
