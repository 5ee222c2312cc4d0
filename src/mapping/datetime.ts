/**
 * DICOM DA/TM + time zone → FHIR dateTime. The precision the data has is kept: a date alone stays a
 * date; a time gets seconds only because FHIR requires them once hours are given; fractional seconds
 * are kept to milliseconds (truncated, so 59.9999 never rolls into the next minute).
 */
import type { DicomDate, DicomTime } from '../time';
import { isKnownZone, offsetAtWallClock, wallClockMs } from '../time';

/** How to find the UTC offset of a local date-time: a fixed offset or an IANA zone (DST-aware). */
export type ZoneRule = { kind: 'fixed'; minutes: number } | { kind: 'iana'; zone: string };

/** FHIR dateTime allows offsets from -14:00 to +14:00 only. */
const MAX_OFFSET_MINUTES = 14 * 60;

export function isFhirOffset(minutes: number): boolean {
  return Number.isInteger(minutes) && Math.abs(minutes) <= MAX_OFFSET_MINUTES;
}

/** "+0800" → fixed; "Asia/Taipei" → IANA; anything else undefined. */
export function zoneRuleFor(timezone: string): ZoneRule | undefined {
  const fixed = /^([+-])(\d{2})(\d{2})$/.exec(timezone);
  if (fixed) {
    const minutes = (fixed[1] === '-' ? -1 : 1) * (Number(fixed[2]) * 60 + Number(fixed[3]));
    return Number(fixed[3]) < 60 && isFhirOffset(minutes) ? { kind: 'fixed', minutes } : undefined;
  }
  return isKnownZone(timezone) ? { kind: 'iana', zone: timezone } : undefined;
}

/**
 * The offset in force at a local date-time in an IANA zone. Ambiguous times (clocks going back) and
 * skipped times (clocks going forward) resolve deterministically to the offset found first.
 */
export function offsetForLocalTime(zone: string, date: DicomDate, time: DicomTime): number | undefined {
  const wall = wallClockMs(
    date.year,
    date.month,
    date.day,
    time.hour,
    time.minute ?? 0,
    Math.min(time.second ?? 0, 59),
  );
  return offsetAtWallClock(zone, wall);
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

export function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

export function formatDate(d: DicomDate): string {
  return `${pad(d.year, 4)}-${pad(d.month)}-${pad(d.day)}`;
}

/** FHIR requires years 0001-9999 in dateTime. */
export function isFhirYear(d: DicomDate): boolean {
  return d.year >= 1 && d.year <= 9999;
}

/**
 * A FHIR dateTime from a DICOM date, optional time and the offset to use (explicit minutes, or a zone
 * rule to evaluate at that local time). Undefined when no offset can be found for a timed value.
 */
export function fhirDateTime(
  date: DicomDate,
  time: DicomTime | undefined,
  offset: number | ZoneRule,
): string | undefined {
  if (!isFhirYear(date)) return undefined;
  const day = formatDate(date);
  if (!time) return day;
  let minutes: number | undefined;
  if (typeof offset === 'number') minutes = offset;
  else if (offset.kind === 'fixed') minutes = offset.minutes;
  else minutes = offsetForLocalTime(offset.zone, date, time);
  if (minutes === undefined || !isFhirOffset(minutes)) return undefined;
  const fraction = time.fraction ? `.${time.fraction.slice(0, 3)}` : '';
  return `${day}T${pad(time.hour)}:${pad(time.minute ?? 0)}:${pad(time.second ?? 0)}${fraction}${formatOffset(minutes)}`;
}
