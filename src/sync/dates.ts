/**
 * The StudyDate windows a run walks through, and the range a poll covers. Pure: "today" is always
 * passed in; the day arithmetic itself is src/time/days.ts.
 */
import type { StudyWindow } from '../dicomweb';
import { addDays, dayNumber, minDa } from '../time';

/** Consecutive inclusive windows of `days` days covering from..to, oldest first. */
export function planWindows(from: string, to: string, days: number): StudyWindow[] {
  if (days < 1) throw new Error('window size must be at least one day');
  dayNumber(from);
  dayNumber(to);
  const windows: StudyWindow[] = [];
  for (let start = from; start <= to; start = addDays(start, days)) {
    windows.push({ from: start, to: minDa(addDays(start, days - 1), to) });
  }
  return windows;
}

/**
 * The range a poll covers: from the day after the checkpoint (catching up after downtime), or the
 * lookback window if that starts earlier, through today. Without a checkpoint: backfillFrom or the lookback.
 */
export function pollRange(opts: {
  today: string;
  lookbackDays: number;
  checkpoint?: string;
  backfillFrom?: string;
}): StudyWindow {
  const lookbackStart = addDays(opts.today, -opts.lookbackDays);
  const start = opts.checkpoint
    ? minDa(addDays(opts.checkpoint, 1), lookbackStart)
    : minDa(opts.backfillFrom ?? lookbackStart, lookbackStart);
  return { from: start, to: opts.today };
}
