/**
 * Calendar arithmetic on DICOM DA strings (YYYYMMDD): the one home for day numbers, day offsets and
 * "today at the PACS", used by the sync's date policy and the DICOMweb window planner. Pure: "now" is passed in.
 */
import { parseDate } from './dicomDate';
import { offsetAtInstant, wallClockMs } from './zone';

const DAY_MS = 86_400_000;

/** Days since 1970-01-01 of a YYYYMMDD date (years 0001–9999 included); throws on anything else. */
export function dayNumber(da: string): number {
  if (!/^\d{8}$/.test(da)) throw new RangeError(`"${da}" is not a YYYYMMDD date`);
  const d = parseDate(da);
  if (!d) throw new RangeError(`"${da}" is not a calendar date`);
  // wallClockMs, not Date.UTC, which reads years 0–99 as 1900–1999 (a sweep starts at 0001-01-01).
  return Math.round(wallClockMs(d.year, d.month, d.day) / DAY_MS);
}

export function fromDayNumber(n: number): string {
  const t = new Date(n * DAY_MS);
  return `${String(t.getUTCFullYear()).padStart(4, '0')}${String(t.getUTCMonth() + 1).padStart(2, '0')}${String(t.getUTCDate()).padStart(2, '0')}`;
}

export function addDays(da: string, days: number): string {
  return fromDayNumber(dayNumber(da) + days);
}

/** Whole days from a to b (b − a). */
export function daysBetween(a: string, b: string): number {
  return dayNumber(b) - dayNumber(a);
}

export function minDa(a: string, b: string): string {
  return a < b ? a : b;
}

/** The calendar date at `now` in an IANA zone or a fixed "+HHMM" offset (the PACS's local day). */
export function todayIn(timezone: string, now: Date): string {
  const offset = offsetAtInstant(timezone, now.getTime());
  if (offset === undefined) throw new Error(`unknown time zone "${timezone}"`);
  return fromDayNumber(Math.floor((now.getTime() + offset * 60_000) / DAY_MS));
}
