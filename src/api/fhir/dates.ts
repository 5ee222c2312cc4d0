/**
 * FHIR date search values (`started=ge2023-01-05`, `started=lt2023-01-05T10:00:00+08:00`) and the
 * time-zone arithmetic to turn them into local StudyDate bounds. Pure functions.
 *
 * Semantics kept simple and identical for the PACS query and the result filter:
 * - a value with date precision (YYYY, YYYY-MM, YYYY-MM-DD) compares with the study's local date;
 * - a value with a time compares instants; a study whose `started` has no time never matches it.
 */
import { addDays, daysInMonth, offsetAtInstant, offsetAtWallClock, parseFhirDateTime, statedInstant } from '../../time';

export type DatePrefix = 'eq' | 'ge' | 'gt' | 'le' | 'lt';

export interface DateValue {
  prefix: DatePrefix;
  /** Date precision: first and last local day covered, YYYY-MM-DD. */
  days?: { first: string; last: string };
  /** Time precision: local wall clock, its explicit offset (minutes) if given, and its precision in ms. */
  time?: { date: string; hh: number; mm: number; ss: number; ms: number; offsetMinutes?: number; stepMs: number };
}

const DATE_RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/;
const DATETIME_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?$/;

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** YYYY-MM-DD shifted by n days. */
function addIsoDays(day: string, n: number): string {
  const da = addDays(day.replace(/-/g, ''), n);
  return `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6)}`;
}

/** Parses one `started` value; returns an error message for the client when it is not acceptable. */
export function parseDateValue(raw: string): DateValue | string {
  const m = /^(eq|ne|gt|lt|ge|le|sa|eb|ap)?(.*)$/.exec(raw)!;
  const prefix = (m[1] ?? 'eq') as string;
  const value = m[2];
  if (!['eq', 'ge', 'gt', 'le', 'lt'].includes(prefix))
    return `prefix "${prefix}" is not supported (use eq, ge, gt, le or lt)`;
  const p = prefix as DatePrefix;
  const d = DATE_RE.exec(value);
  if (d) {
    const y = Number(d[1]);
    const mo = d[2] ? Number(d[2]) : undefined;
    const day = d[3] ? Number(d[3]) : undefined;
    if (mo !== undefined && (mo < 1 || mo > 12)) return `"${value}" is not a valid date`;
    if (day !== undefined && (day < 1 || day > daysInMonth(y, mo!))) return `"${value}" is not a valid date`;
    const first = `${d[1]}-${pad(mo ?? 1)}-${pad(day ?? 1)}`;
    const last = `${d[1]}-${pad(mo ?? 12)}-${pad(day ?? daysInMonth(y, mo ?? 12))}`;
    return { prefix: p, days: { first, last } };
  }
  const t = DATETIME_RE.exec(value);
  if (!t)
    return `"${value}" is not a FHIR date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm])`;
  const [y, mo, day, hh, mm] = [t[1], t[2], t[3], t[4], t[5]].map(Number);
  const ss = t[6] ? Number(t[6]) : 0;
  const ms = t[7] ? Number(t[7].slice(0, 3).padEnd(3, '0')) : 0;
  if (mo < 1 || mo > 12 || day < 1 || day > daysInMonth(y, mo) || hh > 23 || mm > 59 || ss > 59)
    return `"${value}" is not a valid dateTime`;
  let offsetMinutes: number | undefined;
  if (t[8] === 'Z') offsetMinutes = 0;
  else if (t[8]) {
    const sign = t[8][0] === '-' ? -1 : 1;
    const [oh, om] = t[8].slice(1).split(':').map(Number);
    if (oh > 14 || om > 59) return `"${value}" has an invalid time-zone offset`;
    offsetMinutes = sign * (oh * 60 + om);
  }
  const stepMs = t[7] ? 1 : t[6] ? 1000 : 60_000;
  return { prefix: p, time: { date: `${t[1]}-${t[2]}-${t[3]}`, hh, mm, ss, ms, offsetMinutes, stepMs } };
}

// ── time zones ─────────────────────────────────────────────────────────────

/**
 * Offset from UTC in minutes of a zone ("Asia/Taipei" or "+0800") at an instant
 * (0 for an unknown zone, which config validation prevents).
 */
export function zoneOffsetMinutes(zone: string, instantMs: number): number {
  return offsetAtInstant(zone, instantMs) ?? 0;
}

/** The instant of a wall-clock time in a zone (ms since epoch). */
function wallToInstant(wallAsUtcMs: number, zone: string): number {
  return wallAsUtcMs - (offsetAtWallClock(zone, wallAsUtcMs) ?? 0) * 60_000;
}

/** [start, end) instants of a time-precision value; a value without offset is read in `zone`. */
export function instantRange(t: NonNullable<DateValue['time']>, zone: string): { start: number; end: number } {
  const [y, mo, d] = t.date.split('-').map(Number);
  const wall = Date.UTC(y, mo - 1, d, t.hh, t.mm, t.ss, t.ms);
  const start = t.offsetMinutes !== undefined ? wall - t.offsetMinutes * 60_000 : wallToInstant(wall, zone);
  return { start, end: start + t.stepMs };
}

// ── matching a resource's `started` ───────────────────────────────────────

/** Whether an ImagingStudy.started value satisfies one date criterion (`zone` reads offset-less values). */
export function startedMatches(started: string | undefined, v: DateValue, zone: string): boolean {
  if (!started) return false;
  if (v.days) {
    const day = started.slice(0, 10);
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return false;
    const { first, last } = v.days;
    switch (v.prefix) {
      case 'eq':
        return day >= first && day <= last;
      case 'ge':
        return day >= first;
      case 'gt':
        return day > last;
      case 'le':
        return day <= last;
      case 'lt':
        return day < first;
    }
  }
  const instant = startedInstant(started, zone);
  if (instant === undefined) return false;
  const { start, end } = instantRange(v.time!, zone);
  switch (v.prefix) {
    case 'eq':
      return instant >= start && instant < end;
    case 'ge':
      return instant >= start;
    case 'gt':
      return instant >= end;
    case 'le':
      return instant < end;
    case 'lt':
      return instant < start;
  }
}

function startedInstant(started: string, zone: string): number | undefined {
  const t = parseFhirDateTime(started);
  if (!t?.complete || t.wallMs === undefined) return undefined;
  return statedInstant(t) ?? wallToInstant(t.wallMs, zone);
}

/**
 * The instant `_sort=started` orders by: the stated or zone-read start, or for a date alone the start of
 * that local day (the lower bound of what it covers); undefined when `started` is absent or unreadable.
 */
export function startedSortValue(started: string | undefined, zone: string): number | undefined {
  const t = started ? parseFhirDateTime(started) : undefined;
  if (!t) return undefined;
  if (t.wallMs !== undefined) return statedInstant(t) ?? wallToInstant(t.wallMs, zone);
  const d = t.day;
  return wallToInstant(Date.UTC(Number(d.slice(0, 4)), Number(d.slice(4, 6)) - 1, Number(d.slice(6, 8))), zone);
}

// ── QIDO bounds ───────────────────────────────────────────────────────────

/** FHIR's offset limits: a study's own Timezone Offset From UTC can put its local day anywhere in between. */
const EARLIEST_OFFSET = -14 * 60;
const LATEST_OFFSET = 14 * 60;

/** The local calendar day of an instant at a given offset. */
function dayAt(instantMs: number, offsetMinutes: number): string {
  return new Date(instantMs + offsetMinutes * 60_000).toISOString().slice(0, 10);
}

/**
 * StudyDate ranges for a set of criteria combined with AND. `null` when no study can match. Date values
 * are local days; a date-time bound is an instant, and a study may carry any UTC offset of its own, so
 * the range spans every local day that instant falls on somewhere (-14:00 to +14:00) and StudyTime is
 * left open. The result filter, reading each study's own offset, makes every bound exact.
 */
export function qidoDateRange(values: DateValue[], zone: string): { StudyDate?: string } | null {
  // Local days as YYYY-MM-DD, which order as strings.
  let lo: string | undefined;
  let hi: string | undefined;
  const raise = (day: string) => {
    if (!lo || day > lo) lo = day;
  };
  const lower = (day: string) => {
    if (!hi || day < hi) hi = day;
  };
  for (const v of values) {
    if (v.days) {
      const { first, last } = v.days;
      if (v.prefix === 'eq' || v.prefix === 'ge') raise(first);
      if (v.prefix === 'gt') raise(addIsoDays(last, 1));
      if (v.prefix === 'eq' || v.prefix === 'le') lower(last);
      if (v.prefix === 'lt') lower(addIsoDays(first, -1));
    } else {
      const { start, end } = instantRange(v.time!, zone);
      if (v.prefix === 'eq' || v.prefix === 'ge') raise(dayAt(start, EARLIEST_OFFSET));
      if (v.prefix === 'gt') raise(dayAt(end, EARLIEST_OFFSET));
      if (v.prefix === 'eq' || v.prefix === 'le') lower(dayAt(end - 1, LATEST_OFFSET));
      if (v.prefix === 'lt') lower(dayAt(start - 1, LATEST_OFFSET));
    }
  }
  if (lo && hi && lo > hi) return null;
  const da = (d: string) => d.replace(/-/g, '');
  if (lo && hi && lo === hi) return { StudyDate: da(lo) };
  if (!lo && !hi) return {};
  return { StudyDate: `${lo ? da(lo) : ''}-${hi ? da(hi) : ''}` };
}
