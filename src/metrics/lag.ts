/**
 * Sync lag: how far behind the PACS the synced data may be. A poll queries StudyDate windows up to the
 * moment it runs, so a completed poll (ok or partial: its failures are recorded for retry and its
 * checkpoint advanced) makes everything current as of its start. Pure functions over run history.
 */
import type { RunRecord } from '../state';

const COMPLETED = new Set(['ok', 'partial']);

/** The end of the window a finished run made current, or undefined when it completed nothing. */
export function windowEndOf(run: Pick<RunRecord, 'kind' | 'status' | 'startedAt' | 'endedAt'>): Date | undefined {
  if (run.kind !== 'poll' || !COMPLETED.has(run.status) || !run.endedAt) return undefined;
  return new Date(run.startedAt);
}

/** Start of the day after a DICOM date (YYYYMMDD), in UTC: the end of a checkpoint's last complete day. */
export function endOfCheckpointDay(throughDate: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(throughDate);
  if (!m) return undefined;
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + 1));
}

/**
 * Seconds between `now` and the end of the last completed window, or undefined before any completed
 * poll. A checkpoint older than that run (a source still catching up) caps the window end.
 */
export function syncLagSeconds(runs: RunRecord[], now: Date, checkpoint?: string): number | undefined {
  const ends = runs.map(windowEndOf).filter((d): d is Date => d !== undefined);
  if (!ends.length) return undefined;
  let end = new Date(Math.max(...ends.map((d) => d.getTime())));
  const dayEnd = checkpoint ? endOfCheckpointDay(checkpoint) : undefined;
  if (dayEnd && dayEnd < end) end = dayEnd;
  return Math.max(0, (now.getTime() - end.getTime()) / 1000);
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

/** Oldest-first points for the status page's chart: what each run wrote and the lag it left behind. */
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
