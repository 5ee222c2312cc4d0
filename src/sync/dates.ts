/**
 * Calendar arithmetic on DICOM DA strings (YYYYMMDD) and the StudyDate windows a run walks through.
 * Pure: "today" is always passed in.
 */
import type { StudyWindow } from '../dicomweb/types';
import { offsetAtInstant } from '../time/zone';

const DA = /^(\d{4})(\d{2})(\d{2})$/;

function toUtcDate(da: string): Date {
  const m = DA.exec(da);
  if (!m) throw new Error(`"${da}" is not a YYYYMMDD date`);
  // setUTCFullYear, not Date.UTC, which reads years 0–99 as 1900–1999 (a sweep starts at 0001-01-01).
  const d = new Date(0);
  d.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  if (d.getUTCFullYear() !== Number(m[1]) || d.getUTCMonth() !== Number(m[2]) - 1 || d.getUTCDate() !== Number(m[3])) {
    throw new Error(`"${da}" is not a calendar date`);
  }
  return d;
}

function fromUtcDate(d: Date): string {
  return (
    `${d.getUTCFullYear()}`.padStart(4, '0') +
    `${d.getUTCMonth() + 1}`.padStart(2, '0') +
    `${d.getUTCDate()}`.padStart(2, '0')
  );
}

export function isDa(value: string): boolean {
  try {
    toUtcDate(value);
    return true;
  } catch {
    return false;
  }
}

export function addDays(da: string, days: number): string {
  const d = toUtcDate(da);
  d.setUTCDate(d.getUTCDate() + days);
  return fromUtcDate(d);
}

export function minDa(a: string, b: string): string {
  return a < b ? a : b;
}

/** Whole days from a to b (b − a). */
export function daysBetween(a: string, b: string): number {
  return Math.round((toUtcDate(b).getTime() - toUtcDate(a).getTime()) / 86400000);
}

/** The calendar date at `now` in an IANA zone or a fixed "+HHMM" offset (the PACS's local day). */
export function todayIn(timezone: string, now: Date): string {
  const offset = offsetAtInstant(timezone, now.getTime());
  if (offset === undefined) throw new Error(`unknown time zone "${timezone}"`);
  return fromUtcDate(new Date(now.getTime() + offset * 60000));
}

/** Consecutive inclusive windows of `days` days covering from..to, oldest first. */
export function planWindows(from: string, to: string, days: number): StudyWindow[] {
  if (days < 1) throw new Error('window size must be at least one day');
  toUtcDate(from);
  toUtcDate(to);
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
