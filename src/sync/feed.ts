/**
 * Discovery through a PACS change feed (src/dicomweb/changeFeed.ts), polled every few seconds beside
 * the StudyDate polls. One tick: read the events after the checkpoint, note the studies they name as
 * pending (in the store, with the checkpoint, in one transaction), then sync the pending studies that
 * are ready (Orthanc's StableStudy) or have been quiet for `settleSeconds`, as one recorded run of kind
 * `feed`. A study still being stored is therefore written once, complete, not half-done and again.
 *
 * The feed's checkpoint is its last sequence number. When the feed goes back (the PACS database was
 * replaced, so sequence numbers went down), what it would have said is lost: the checkpoint moves to
 * the new head and a sweep is requested (FeedStateRepository.requestSweep; the sweep clears it).
 */
import type { Logger } from 'pino';
import type { ChangeFeedConfig } from '../config';
import type { ChangeFeed, FeedEvent } from '../dicomweb';
import type { FeedStateRepository, PendingUpdate } from '../state';
import { describeError, SourceBusyError } from './errors';
import type { RunSummary } from './types';

/** Feed pages read per tick at most, so one tick never runs for long (the rest comes next tick). */
const MAX_PAGES_PER_TICK = 20;
/** Pending studies synced per feed run at most. */
const MAX_STUDIES_PER_RUN = 1000;

export interface FeedTickDeps {
  sourceId: string;
  feed: ChangeFeed;
  state: FeedStateRepository;
  config: ChangeFeedConfig;
  /** Syncs these UIDs as one recorded run of the source (SyncService.syncStudyUids). */
  syncStudyUids(uids: string[]): Promise<{ summary: RunSummary; missing: string[] }>;
  log: Logger;
  now: () => Date;
  /** Called when the feed went back; the sweep's scheduler may start a sweep at once. */
  onSweepNeeded?: (sourceId: string, reason: string) => void;
  /** False while a failed feed run is backing off: events are still read, nothing is synced. */
  maySync?: () => boolean;
}

export interface FeedTickResult {
  /** Events read in this tick. */
  events: number;
  /** The feed went back; a sweep was requested. */
  wentBack: boolean;
  /** The feed run, when there were studies to sync. */
  run?: RunSummary;
  /** Seconds from each synced study's first feed event to the end of its run. */
  freshness: number[];
}

/** Pending updates for a page of events: ready studies at once, changing ones when quiet. */
export function pendingUpdates(events: FeedEvent[]): PendingUpdate[] {
  const byRef = new Map<string, boolean>();
  for (const e of events) {
    if (!e.studyRef || (e.kind !== 'study-ready' && e.kind !== 'study-changing')) continue;
    byRef.set(e.studyRef, (byRef.get(e.studyRef) ?? false) || e.kind === 'study-ready');
  }
  return [...byRef].map(([studyRef, ready]) => ({ studyRef, ready }));
}

/** Reads the feed on from the checkpoint into the pending studies. */
async function readFeed(d: FeedTickDeps): Promise<{ events: number; wentBack: boolean }> {
  const checkpoint = await d.state.checkpoint(d.sourceId);
  if (!checkpoint || checkpoint.feedType !== d.feed.type) {
    // A new reader starts at the head: what came before is the polls' and the sweep's.
    const head = await d.feed.head();
    await d.state.setCheckpoint(d.sourceId, d.feed.type, head, d.now());
    d.log.info({ feed: d.feed.type, seq: head }, 'change feed: reading from its newest event on');
    return { events: 0, wentBack: false };
  }
  let since = checkpoint.lastSeq;
  let events = 0;
  for (let page = 0; page < MAX_PAGES_PER_TICK; page++) {
    const answer = await d.feed.poll(since, d.config.pageSize);
    if (answer.done && answer.last < since) {
      const reason = `change feed went back from ${since} to ${answer.last}: the PACS database was replaced`;
      await d.state.requestSweep(d.sourceId, reason, d.now());
      await d.state.setCheckpoint(d.sourceId, d.feed.type, answer.last, d.now());
      d.log.warn({ feed: d.feed.type, from: since, to: answer.last }, `${reason}; a sweep is requested`);
      d.onSweepNeeded?.(d.sourceId, reason);
      return { events, wentBack: true };
    }
    const pending = pendingUpdates(answer.events);
    // Another process reading the same feed into the same store moved the checkpoint: it does the work.
    if (!(await d.state.recordPage(d.sourceId, d.feed.type, since, answer.last, pending, d.now()))) break;
    events += answer.events.length;
    since = answer.last;
    if (answer.done || !answer.events.length) break;
  }
  return { events, wentBack: false };
}

/** Syncs the pending studies that are due; they leave the pending list once their run settled them. */
async function syncPending(d: FeedTickDeps): Promise<Pick<FeedTickResult, 'run' | 'freshness'>> {
  const startedAt = d.now();
  const quietSince = new Date(startedAt.getTime() - d.config.settleSeconds * 1000);
  const due = await d.state.duePending(d.sourceId, quietSince, MAX_STUDIES_PER_RUN);
  if (!due.length) return { freshness: [] };
  const uidOf = await d.feed.studyUids(due.map((p) => p.studyRef));
  // Gone from the PACS since the event: deletions are the sweep's business.
  const gone = due.filter((p) => !uidOf.has(p.studyRef)).map((p) => p.studyRef);
  if (gone.length) await d.state.removePending(d.sourceId, gone, startedAt);
  const known = due.filter((p) => uidOf.has(p.studyRef));
  if (!known.length) return { freshness: [] };

  const { summary, missing } = await d.syncStudyUids([...new Set(known.map((p) => uidOf.get(p.studyRef)!))]);
  const settled = summary.status === 'ok' || summary.status === 'partial';
  // After a failed or interrupted run the studies stay pending (those it did settle are found unchanged).
  const done = settled ? known : known.filter((p) => missing.includes(uidOf.get(p.studyRef)!));
  await d.state.removePending(
    d.sourceId,
    done.map((p) => p.studyRef),
    startedAt,
  );
  const end = Date.parse(summary.endedAt);
  const freshness = settled ? known.map((p) => (end - Date.parse(p.firstSeen)) / 1000) : [];
  return { run: summary, freshness };
}

/** One feed tick for one source. Throws when the feed cannot be read (the caller logs and tries again). */
export async function feedTick(d: FeedTickDeps): Promise<FeedTickResult> {
  const read = await readFeed(d);
  if (d.maySync && !d.maySync()) return { ...read, freshness: [] };
  try {
    return { ...read, ...(await syncPending(d)) };
  } catch (err) {
    // A poll, backfill or sweep of this source is running: the studies stay pending for the next tick.
    if (err instanceof SourceBusyError) return { ...read, freshness: [] };
    throw err;
  }
}

export interface FeedSchedulerSource {
  sourceId: string;
  config: ChangeFeedConfig;
  /** The source's feed, or undefined when it has none (built, and for `auto` detected, on first use). */
  resolveFeed(): Promise<ChangeFeed | undefined>;
}

export interface FeedSchedulerOptions {
  sources: FeedSchedulerSource[];
  state: FeedStateRepository;
  syncStudyUids(sourceId: string, uids: string[]): Promise<{ summary: RunSummary; missing: string[] }>;
  log: Logger;
  now: () => Date;
  onSweepNeeded?: (sourceId: string, reason: string) => void;
}

export interface FeedScheduler {
  start(): void;
  /** Stops polling and waits for the tick in progress (its run finishes its batch in hand). */
  stop(): Promise<void>;
  /** The feeds found so far, by source (for the bench and status). */
  feeds(): Map<string, ChangeFeed>;
}

/** After the last event read, how long the feed is polled at the busy interval. */
const BUSY_WINDOW_MS = 10_000;

/** Longest pause between tries after the feed could not be read or a feed run failed. */
const MAX_BACKOFF_MS = 300_000;

/**
 * Polls each source's feed every `intervalSeconds`, or `busyIntervalSeconds` while studies are arriving
 * (events in the last 10 s, or studies pending), one tick at a time per source. A feed that cannot
 * be read, or a feed run that failed (PACS or FHIR server down), backs off exponentially up to 5 min;
 * it is logged once when it starts failing and once when it recovers, not on every tick.
 */
export function createFeedScheduler(opts: FeedSchedulerOptions): FeedScheduler {
  const shared: SchedulerState = { opts, feeds: new Map(), timers: new Map(), inFlight: new Set(), running: false };
  return {
    start() {
      if (shared.running) return;
      shared.running = true;
      for (const src of opts.sources) if (src.config.type !== 'off') new FeedLoop(shared, src).schedule(0);
    },
    async stop() {
      shared.running = false;
      for (const t of shared.timers.values()) clearTimeout(t);
      shared.timers.clear();
      await Promise.allSettled([...shared.inFlight]);
    },
    feeds: () => shared.feeds,
  };
}

/** What a scheduler's per-source loops share. */
interface SchedulerState {
  opts: FeedSchedulerOptions;
  feeds: Map<string, ChangeFeed>;
  timers: Map<string, NodeJS.Timeout>;
  inFlight: Set<Promise<void>>;
  running: boolean;
}

/** One source's polling: find its feed, tick, pick the next delay (busy, idle or backing off). */
class FeedLoop {
  private readonly log: Logger;
  private feed: ChangeFeed | undefined;
  private readFailures = 0;
  private runFailures = 0;
  private syncAfter = 0;
  private lastEventAt = 0;
  private readonly interval: number;
  private readonly busyInterval: number;

  constructor(
    private readonly shared: SchedulerState,
    private readonly src: FeedSchedulerSource,
  ) {
    this.log = shared.opts.log.child({ source: src.sourceId, feed: true });
    this.interval = src.config.intervalSeconds * 1000;
    this.busyInterval = Math.min(this.interval, src.config.busyIntervalSeconds * 1000);
  }

  schedule(ms: number): void {
    if (!this.shared.running) return;
    const t = setTimeout(() => {
      const work = this.tick()
        .catch((err) => {
          if (this.readFailures++ === 0)
            this.log.warn({ err: describeError(err) }, 'change feed cannot be read; will retry');
          return this.backoff(this.readFailures);
        })
        .then((next) => {
          if (next !== undefined) this.schedule(next);
        });
      const tracked = work.finally(() => this.shared.inFlight.delete(tracked));
      this.shared.inFlight.add(tracked);
    }, ms);
    t.unref();
    this.shared.timers.set(this.src.sourceId, t);
  }

  /** One read of the feed (and the run it starts); the delay before the next, or undefined when there is no feed. */
  private async tick(): Promise<number | undefined> {
    const feed = await this.resolveFeed();
    if (!feed) return undefined;
    const { opts } = this.shared;
    const result = await feedTick({
      sourceId: this.src.sourceId,
      feed,
      state: opts.state,
      config: this.src.config,
      syncStudyUids: (uids) => opts.syncStudyUids(this.src.sourceId, uids),
      log: this.log,
      now: opts.now,
      onSweepNeeded: opts.onSweepNeeded,
      maySync: () => Date.now() >= this.syncAfter,
    });
    if (this.readFailures) this.log.info({ after: this.readFailures }, 'change feed readable again');
    this.readFailures = 0;
    if (result.run?.status === 'failed') {
      this.syncAfter = Date.now() + this.backoff(++this.runFailures);
    } else if (result.run) {
      this.runFailures = 0;
      const worst = Math.max(...result.freshness, 0);
      this.log.info({ studies: result.freshness.length, maxFreshnessSeconds: worst }, 'change feed: studies synced');
    }
    return this.nextDelay(result.events);
  }

  private async resolveFeed(): Promise<ChangeFeed | undefined> {
    if (this.feed) return this.feed;
    this.feed = await this.src.resolveFeed();
    if (!this.feed) {
      this.log.info('no change feed for this source: discovery by StudyDate polls and sweeps only');
      return undefined;
    }
    this.shared.feeds.set(this.src.sourceId, this.feed);
    this.log.info({ type: this.feed.type }, 'change feed found; polling it');
    return this.feed;
  }

  /** Busy: a StableStudy is expected soon (studies pending, or events just now), so look more often. */
  private async nextDelay(events: number): Promise<number> {
    if (events) this.lastEventAt = Date.now();
    const busy =
      Date.now() - this.lastEventAt < BUSY_WINDOW_MS ||
      (await this.shared.opts.state.pendingSummary(this.src.sourceId)).count > 0;
    return busy ? this.busyInterval : this.interval;
  }

  private backoff(n: number): number {
    return Math.min(MAX_BACKOFF_MS, this.interval * 2 ** Math.min(n, 20));
  }
}
