/**
 * Sync lag: how far behind the PACS the synced data may be. A poll queries StudyDate windows up to the
 * moment it runs, so a completed poll (ok or partial: its failures are recorded for retry and its
 * checkpoint advanced) makes everything current as of its start. A change feed makes everything current
 * as of its last read, which goes on to the feed's head (a tick reads until the feed says done), except the
 * studies it named that are not synced yet: the oldest of those caps it. Pure functions over run history
 * and the feed's state (feedReadingOf reads that).
 */
import type { FeedCheckpoint, FeedStateRepository, RunRecord } from '../state';

const COMPLETED = new Set(['ok', 'partial']);

/** Runs that make everything current as of their start: polls, and feed runs (started right after a feed read). */
const CURRENCY_KINDS = new Set<RunRecord['kind']>(['poll', 'feed']);

/** The end of the window a finished run made current, or undefined when it completed nothing. */
export function windowEndOf(run: Pick<RunRecord, 'kind' | 'status' | 'startedAt' | 'endedAt'>): Date | undefined {
  if (!CURRENCY_KINDS.has(run.kind) || !COMPLETED.has(run.status) || !run.endedAt) return undefined;
  return new Date(run.startedAt);
}

/** What a source's change feed says about currency, read from the store (FeedStateRepository). */
export interface FeedReading {
  /** The feed's checkpoint: `updatedAt` is its last read (each tick reads on to the head). */
  checkpoint?: Pick<FeedCheckpoint, 'updatedAt'>;
  /** The first event of the oldest study the feed named that is not synced yet (still pending). */
  oldestPending: string | null;
}

/** A source's feed reading from the store: its checkpoint (none: the source has no feed) and oldest pending study. */
export async function feedReadingOf(
  feed: Pick<FeedStateRepository, 'checkpoint' | 'pendingSummary'>,
  sourceId: string,
): Promise<FeedReading> {
  const [checkpoint, pending] = await Promise.all([feed.checkpoint(sourceId), feed.pendingSummary(sourceId)]);
  return { checkpoint, oldestPending: pending.oldest };
}

/**
 * The instant a change feed made everything current as of: its last read, or, while studies it named are
 * still pending (being stored, waiting for a run, or their run failed), the first event of the oldest of them.
 */
export function feedCurrentAt(feed: FeedReading | undefined): Date | undefined {
  if (!feed?.checkpoint) return undefined;
  const read = Date.parse(feed.checkpoint.updatedAt);
  const pending = feed.oldestPending ? Date.parse(feed.oldestPending) : Infinity;
  const at = Math.min(read, pending);
  return Number.isFinite(at) ? new Date(at) : undefined;
}

/** Start of the day after a DICOM date (YYYYMMDD), in UTC: the end of a checkpoint's last complete day. */
export function endOfCheckpointDay(throughDate: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(throughDate);
  if (!m) return undefined;
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + 1));
}

/**
 * Seconds between `now` and the newest instant everything was current as of, or undefined before any
 * completed poll or feed read. From polls: the start of the last completed one, capped by a checkpoint older
 * than it (a source still catching up). From a change feed (`feed`): its last read, capped by its oldest
 * pending study. The later of the two counts: either way of discovery finds a new study.
 */
export function syncLagSeconds(
  polls: RunRecord[],
  now: Date,
  checkpoint?: string,
  feed?: FeedReading,
): number | undefined {
  const ends = polls
    .filter((r) => r.kind === 'poll')
    .map(windowEndOf)
    .filter((d): d is Date => d !== undefined);
  let pollEnd = ends.length ? Math.max(...ends.map((d) => d.getTime())) : undefined;
  const dayEnd = checkpoint ? endOfCheckpointDay(checkpoint) : undefined;
  if (pollEnd !== undefined && dayEnd && dayEnd.getTime() < pollEnd) pollEnd = dayEnd.getTime();
  const feedEnd = feedCurrentAt(feed)?.getTime();
  const candidates = [pollEnd, feedEnd].filter((t): t is number => t !== undefined);
  if (!candidates.length) return undefined;
  return Math.max(0, (now.getTime() - Math.max(...candidates)) / 1000);
}

export interface RunLagPoint {
  runId: string;
  startedAt: string;
  endedAt: string | null;
  status: RunRecord['status'];
  kind: RunRecord['kind'];
  /** Studies written by the run (new or changed). */
  written: number;
  /** Lag when the run ended: its end minus the newest completed window so far; undefined before any. */
  lagSeconds?: number;
}

/**
 * Oldest-first points for the status page's chart: what each run wrote and the lag it left behind. Feed runs
 * count like polls here: each started right after a read of the feed to its head.
 */
export function lagPerRun(runsNewestFirst: RunRecord[]): RunLagPoint[] {
  const runs = [...runsNewestFirst].reverse();
  let lastEnd: Date | undefined;
  return runs.map((run) => {
    const end = windowEndOf(run);
    if (end && (!lastEnd || end > lastEnd)) lastEnd = end;
    const at = run.endedAt ? new Date(run.endedAt) : undefined;
    return {
      runId: run.runId,
      startedAt: run.startedAt,
      endedAt: run.endedAt,
      status: run.status,
      kind: run.kind,
      written: run.counts.written ?? 0,
      lagSeconds: at && lastEnd ? Math.max(0, (at.getTime() - lastEnd.getTime()) / 1000) : undefined,
    };
  });
}
