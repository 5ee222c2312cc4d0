/**
 * Shared work: a backfill's windows as work items in the store, claimed one at a time by whichever
 * process (or replica) works on the job, each claim renewed while its window syncs and retaken by another
 * process when its holder dies and stops renewing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { StudyWindow } from '../dicomweb';
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

/** What a process knows of other claimants: which are dead at once, and what to do when one is found gone. */
export interface HolderHooks {
  /** A holder known dead without waiting for its claim to lapse (a killed process on this host). */
  isAbandoned?: (holder: string) => boolean;
  /** A holder found dead (declared so, or its claim lapsed): e.g. close the runs it left 'running'. */
  onHolderGone?: (holder: string) => Promise<void>;
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
    private readonly holders: HolderHooks = {},
  ) {}

  /**
   * Claims the next free item: pending, or one whose holder stopped renewing, or one a holder `isAbandoned`
   * declares dead (a process on this host that was killed: no need to wait for its claim to expire).
   */
  async claim(): Promise<WorkItem | undefined> {
    const now = new Date();
    const others = (await this.queue.claimed(this.job)).filter((i) => i.claimedBy && i.claimedBy !== this.owner);
    const abandoned = others.filter((i) => this.holders.isAbandoned?.(i.claimedBy!));
    for (const i of abandoned) await this.queue.release(i.id, i.claimedBy!);
    const lapsed = others.filter(
      (i) => abandoned.includes(i) || (i.claimExpires && i.claimExpires <= now.toISOString()),
    );
    for (const holder of new Set(lapsed.map((i) => i.claimedBy!))) await this.holders.onHolderGone?.(holder);
    return this.queue.claim(this.job, this.owner, this.leaseMs, now);
  }

  /**
   * After this process found nothing free: false when the whole job is done; otherwise waits a little and
   * returns true, as other processes still hold items (and one that dies loses its claim to this one).
   */
  async othersStillWorking(): Promise<boolean> {
    const { pending, claimed } = await this.queue.progress(this.job);
    if (pending + claimed === 0) return false;
    await sleep(Math.min(MAX_IDLE_WAIT_MS, this.leaseMs / 4));
    return true;
  }

  /** Marks a claimed item done. */
  complete(item: WorkItem): Promise<void> {
    return this.queue.complete(item.id, this.owner);
  }

  /** Gives an unfinished item back: another process may claim it at once. */
  release(item: WorkItem): Promise<void> {
    return this.queue.release(item.id, this.owner);
  }

  /** Renews these claims; a claim another process took over meanwhile is logged (its window may be synced twice). */
  async renew(items: WorkItem[]): Promise<void> {
    for (const item of items) {
      const kept = await this.queue.renew(item.id, this.owner, this.leaseMs).catch((err: unknown) => {
        this.log.warn({ job: this.job, item: item.id, err: describeError(err) }, 'work item claim not renewed');
        return true;
      });
      if (!kept) this.log.warn({ job: this.job, item: item.id }, 'work item claim lost to another process');
    }
  }

  get renewEveryMs(): number {
    return this.leaseMs / 3;
  }
}

/**
 * A run's windows from a shared job: each `next()` claims the next free window, held (and renewed) until the
 * run settles it, so batches still span windows as in a backfill of one's own. Fixed windows: never capped.
 */
export class ClaimedWindows {
  private readonly held = new Map<string, WorkItem>();
  private readonly renewal: NodeJS.Timeout;

  constructor(
    private readonly claims: WorkClaims,
    private readonly stopRequested: () => boolean,
  ) {
    this.renewal = setInterval(() => void this.claims.renew([...this.held.values()]), claims.renewEveryMs);
    this.renewal.unref();
  }

  async next(): Promise<StudyWindow | undefined> {
    // Never waits for windows others hold: this run's queue may hold studies of windows it claimed.
    const item = this.stopRequested() ? undefined : await this.claims.claim();
    if (!item) return undefined;
    const window = { from: String(item.payload.from), to: String(item.payload.to) };
    this.held.set(keyOf(window), item);
    return window;
  }

  capFor(): number | undefined {
    return undefined;
  }

  listed(): void {}

  overflowed(w: StudyWindow): StudyWindow {
    return w; // never capped, so never called
  }

  /** The window is settled: every study in it written, unchanged or recorded for retry. */
  async done(window: StudyWindow): Promise<void> {
    const item = this.held.get(keyOf(window));
    if (!item) return;
    this.held.delete(keyOf(window));
    await this.claims.complete(item);
  }

  /** Ends the run's claims: windows not settled go back to the queue. */
  async close(): Promise<void> {
    clearInterval(this.renewal);
    for (const item of this.held.values()) await this.claims.release(item).catch(() => undefined);
    this.held.clear();
  }
}

const keyOf = (w: StudyWindow) => `${w.from}-${w.to}`;
