/**
 * StudyDate windows and StudyTime ranges, and how to halve them when a server truncates a search.
 * Pure functions on DICOM DA strings and seconds of the day.
 */
import { dayNumber, fromDayNumber } from '../time';
import type { StudyWindow } from './types';

/** A search scope: an inclusive StudyDate range, optionally narrowed to StudyTime seconds [start, end]. */
export interface Scope {
  from: string;
  to: string;
  time?: [number, number];
  /** Only studies on this day whose StudyTime is empty (Empty Value Matching). */
  emptyTime?: boolean;
}

export const LAST_SECOND = 86_399;

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

/** Days in an inclusive StudyDate window. */
export function windowDays(w: { from: string; to: string }): number {
  return dayNumber(w.to) - dayNumber(w.from) + 1;
}

export interface AdaptivePlanOptions {
  from: string;
  to: string;
  /**
   * Studies a window should hold. A window costs ceil(n / page) listing requests (one more when n is a
   * whole number of pages), so a target a little under several pages keeps the waste under a page a window.
   */
  targetStudies: number;
  /** Days of the first window when neither the store nor a listing says anything yet. */
  initialDays: number;
  /** Studies the store knows per StudyDate (YYYYMMDD → count): a lower bound of what the PACS holds. */
  known?: Map<string, number>;
  /** A window listing more than this is abandoned and planned again, smaller (never for one day). */
  maxStudies?: number;
}

/**
 * StudyDate windows sized by what the PACS returns: sparse days merge into long windows and dense ones
 * get short windows, so listing a range costs about one request per page of studies. Each window is
 * planned once the previous one is listed: the density it showed, and the store's per-day counts
 * where they say more, decide how many days the next window can hold.
 */
export class AdaptiveWindows {
  private start: number;
  private readonly end: number;
  /** Studies per day last seen on the PACS; undefined before the first listing. */
  private density: number | undefined;
  private knownDays: { day: number; n: number }[] = [];
  /** Known studies from each index of `knownDays` to the end. */
  private knownRest: number[] = [];
  private k = 0;
  /** Known counts include StudyDates sampled from an abandoned listing (a lower bound, not the store's). */
  private sampled = false;

  constructor(private readonly opts: AdaptivePlanOptions) {
    if (opts.targetStudies < 1) throw new RangeError('targetStudies must be at least 1');
    this.start = dayNumber(opts.from);
    this.end = dayNumber(opts.to);
    this.setKnown([...(opts.known ?? new Map<string, number>())].map(([d, n]) => ({ day: dayNumber(d), n })));
  }

  private setKnown(days: { day: number; n: number }[]): void {
    this.knownDays = days.sort((a, b) => a.day - b.day);
    this.knownRest = new Array<number>(days.length + 1).fill(0);
    for (let i = days.length - 1; i >= 0; i--) this.knownRest[i] = this.knownRest[i + 1]! + days[i]!.n;
    this.k = 0;
  }

  /** The next window to list, or undefined when the range is covered. */
  next(): StudyWindow | undefined {
    if (this.start > this.end) return undefined;
    // Where the store knows studies ahead, its counts decide (a listing's density would cut a sparse tail
    // into windows of its own); past the last known day, the density the last listing showed. After an
    // overflow the known counts include a partial sample, a lower bound only: then both bound the window.
    const byKnown = this.daysByKnown();
    const bound = !this.knownAhead()
      ? this.daysByDensity()
      : this.sampled
        ? Math.min(byKnown, this.daysByDensity())
        : byKnown;
    const days = Math.max(1, Math.min(bound, this.end - this.start + 1));
    const w = { from: fromDayNumber(this.start), to: fromDayNumber(this.start + days - 1) };
    this.start += days;
    return w;
  }

  /** The listing cap for a window (none for a single day, which cannot be narrowed by date). */
  capFor(w: StudyWindow): number | undefined {
    return windowDays(w) > 1 ? this.opts.maxStudies : undefined;
  }

  /** What listing `w` returned. */
  listed(w: StudyWindow, studies: number): void {
    this.density = studies / windowDays(w);
  }

  /**
   * Listing `w` went past the cap: the StudyDates of the studies seen before it stopped are a lower
   * bound of the window's days, so they join the known counts and the range from `w.from` is planned
   * again (at most half of `w`), converging on dense days however long `w` was.
   */
  overflowed(w: StudyWindow, seenDates: string[]): StudyWindow {
    const sample = new Map<number, number>();
    for (const d of seenDates) {
      if (!/^\d{8}$/.test(d)) continue;
      const day = dayNumber(d);
      sample.set(day, (sample.get(day) ?? 0) + 1);
    }
    const merged = new Map(this.knownDays.map((k) => [k.day, k.n]));
    for (const [day, n] of sample) merged.set(day, Math.max(n, merged.get(day) ?? 0));
    this.setKnown([...merged].map(([day, n]) => ({ day, n })));
    this.sampled = true;
    this.density = undefined;
    this.start = dayNumber(w.from);
    const half = Math.max(1, Math.floor(windowDays(w) / 2));
    const days = Math.max(1, Math.min(this.daysByKnown(), half));
    const next = { from: w.from, to: fromDayNumber(this.start + days - 1) };
    this.start += days;
    return next;
  }

  private knownAhead(): boolean {
    while (this.k < this.knownDays.length && this.knownDays[this.k]!.day < this.start) this.k++;
    return this.k < this.knownDays.length;
  }

  private daysByDensity(): number {
    if (this.density === undefined) return this.knownDays.length ? Infinity : this.opts.initialDays;
    return this.density > 0 ? Math.floor(this.opts.targetStudies / this.density) : Infinity;
  }

  /**
   * Days from `start` until the store's known studies would pass the target. When all that is left
   * fits in one and a half targets, it is one window: a short tail would cost a request of its own.
   */
  private daysByKnown(): number {
    while (this.k < this.knownDays.length && this.knownDays[this.k]!.day < this.start) this.k++;
    if ((this.knownRest[this.k] ?? 0) <= 1.5 * this.opts.targetStudies) return Infinity;
    let total = 0;
    for (let i = this.k; i < this.knownDays.length; i++) {
      const { day, n } = this.knownDays[i]!;
      total += n;
      if (total > this.opts.targetStudies) return day - this.start; // stop before that day (at least one day)
    }
    return Infinity;
  }
}

/** A fixed list of windows behind the same interface (fixed `windowDays`, backfills). */
export class FixedWindows {
  private i = 0;
  constructor(private readonly windows: StudyWindow[]) {}
  next(): StudyWindow | undefined {
    return this.windows[this.i++];
  }
  capFor(): number | undefined {
    return undefined;
  }
  listed(): void {}
  overflowed(w: StudyWindow): StudyWindow {
    return w; // never capped, so never called
  }
}

/** How a run walks a StudyDate range: the next window given what the previous listings returned. */
export type WindowPlanner = Pick<AdaptiveWindows, 'next' | 'capFor' | 'listed' | 'overflowed'>;
