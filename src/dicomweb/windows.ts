/**
 * StudyDate windows and StudyTime ranges, and how to halve them when a server truncates a search.
 * Pure functions on DICOM DA strings and seconds of the day.
 */
import { parseDate } from './dicomJson';

/** A search scope: an inclusive StudyDate range, optionally narrowed to StudyTime seconds [start, end]. */
export interface Scope {
  from: string;
  to: string;
  time?: [number, number];
  /** Only studies on this day whose StudyTime is empty (Empty Value Matching). */
  emptyTime?: boolean;
}

const DAY_MS = 86_400_000;
export const LAST_SECOND = 86_399;

export function dayNumber(da: string): number {
  const d = parseDate(da);
  if (!d) throw new RangeError(`"${da}" is not a DICOM date (YYYYMMDD)`);
  // Date.UTC maps years 0–99 to 1900–1999; setUTCFullYear does not.
  const t = new Date(Date.UTC(2000, d.month - 1, d.day));
  t.setUTCFullYear(d.year, d.month - 1, d.day);
  return Math.round(t.getTime() / DAY_MS);
}

export function fromDayNumber(n: number): string {
  const t = new Date(n * DAY_MS);
  return `${String(t.getUTCFullYear()).padStart(4, '0')}${String(t.getUTCMonth() + 1).padStart(2, '0')}${String(t.getUTCDate()).padStart(2, '0')}`;
}

/** "HHMMSS" for a second of the day. */
export function formatTm(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return [h, m, s].map((v) => String(v).padStart(2, '0')).join('');
}

/** QIDO matching keys for a scope. Range ends are inclusive; `.999999` keeps fractional seconds in. */
export function scopeParams(scope: Scope): Array<[string, string]> {
  const params: Array<[string, string]> = [
    ['StudyDate', scope.from === scope.to ? scope.from : `${scope.from}-${scope.to}`],
  ];
  if (scope.emptyTime) params.push(['StudyTime', '""']);
  else if (scope.time) params.push(['StudyTime', `${formatTm(scope.time[0])}-${formatTm(scope.time[1])}.999999`]);
  return params;
}

export function describeScope(scope: Scope): string {
  const days = scope.from === scope.to ? scope.from : `${scope.from}-${scope.to}`;
  if (scope.emptyTime) return `${days} (no StudyTime)`;
  return scope.time ? `${days} ${formatTm(scope.time[0])}-${formatTm(scope.time[1])}` : days;
}

/**
 * The narrower scopes that together cover this one: date halves, then (for one day) StudyTime
 * halves plus the studies of that day without a StudyTime. Empty when it cannot be narrowed.
 */
export function splitScope(scope: Scope): Scope[] {
  if (scope.emptyTime) return [];
  const a = dayNumber(scope.from);
  const b = dayNumber(scope.to);
  if (b > a) {
    const mid = Math.floor((a + b) / 2);
    return [
      { from: scope.from, to: fromDayNumber(mid) },
      { from: fromDayNumber(mid + 1), to: scope.to },
    ];
  }
  if (!scope.time) {
    const half = Math.floor(LAST_SECOND / 2);
    return [
      { ...scope, time: [0, half] },
      { ...scope, time: [half + 1, LAST_SECOND] },
      { from: scope.from, to: scope.to, emptyTime: true },
    ];
  }
  const [s, e] = scope.time;
  if (e <= s) return [];
  const mid = Math.floor((s + e) / 2);
  return [
    { ...scope, time: [s, mid] },
    { ...scope, time: [mid + 1, e] },
  ];
}

/** Splits a list in two halves (for UID batches). */
export function halves<T>(items: T[]): [T[], T[]] {
  const mid = Math.ceil(items.length / 2);
  return [items.slice(0, mid), items.slice(mid)];
}

/**
 * Room for a UID list in one query URL: with the rest of the query this stays under the 8 KB request
 * line that common servers and proxies accept (nginx, Apache), even with 64-character UIDs.
 */
export const MAX_UID_LIST_CHARS = 6000;

/** UID batches of at most `size` UIDs whose comma-joined list fits in `maxChars`. */
export function uidBatches(uids: string[], size: number, maxChars = MAX_UID_LIST_CHARS): string[][] {
  const batches: string[][] = [];
  let batch: string[] = [];
  let chars = 0;
  for (const uid of uids) {
    if (batch.length && (batch.length >= size || chars + 1 + uid.length > maxChars)) {
      batches.push(batch);
      batch = [];
      chars = 0;
    }
    chars += (batch.length ? 1 : 0) + uid.length; // the comma, then the UID
    batch.push(uid);
  }
  if (batch.length) batches.push(batch);
  return batches;
}
