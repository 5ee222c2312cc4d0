/**
 * UTC offsets of a time zone, given as an IANA name ("Asia/Taipei") or a fixed "+HHMM"/"-HHMM".
 * One implementation (Intl, DST-aware, years before 100 and BC included) for the mapper, the sync's
 * "today at the PACS" and the API's date searches.
 */
import { parseOffset } from './dicomDate';

const formatters = new Map<string, Intl.DateTimeFormat | null>();

function formatterFor(zone: string): Intl.DateTimeFormat | undefined {
  let f = formatters.get(zone);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: zone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
        era: 'short',
      });
    } catch {
      f = null;
    }
    formatters.set(zone, f);
  }
  return f ?? undefined;
}

/** Whether `zone` is a fixed offset or an IANA zone this runtime knows. */
export function isKnownZone(zone: string): boolean {
  return parseOffset(zone) !== undefined || formatterFor(zone) !== undefined;
}

/** Milliseconds since the epoch of a wall-clock time read as UTC (years below 100 included). */
export function wallClockMs(
  year: number,
  month: number,
  day: number,
  hour = 0,
  minute = 0,
  second = 0,
  ms = 0,
): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, ms);
  return d.getTime();
}

/** The zone's offset (minutes east of UTC) at an instant; undefined for an unknown zone. */
export function offsetAtInstant(zone: string, utcMs: number): number | undefined {
  const fixed = parseOffset(zone);
  if (fixed !== undefined) return fixed;
  const f = formatterFor(zone);
  if (!f) return undefined;
  const parts: Record<string, string> = {};
  for (const p of f.formatToParts(new Date(utcMs))) parts[p.type] = p.value;
  let year = Number(parts.year);
  if (parts.era === 'BC' || parts.era === 'B') year = 1 - year;
  const local = wallClockMs(
    year,
    Number(parts.month),
    Number(parts.day),
    Number(parts.hour),
    Number(parts.minute),
    Number(parts.second),
  );
  return Math.round((local - Math.floor(utcMs / 1000) * 1000) / 60000);
}

/**
 * The offset in force at a local wall-clock time (given as if it were UTC). Ambiguous times (clocks
 * going back) and skipped times (clocks going forward) resolve deterministically to the offset found first.
 */
export function offsetAtWallClock(zone: string, wallMs: number): number | undefined {
  const first = offsetAtInstant(zone, wallMs);
  if (first === undefined) return undefined;
  const second = offsetAtInstant(zone, wallMs - first * 60000)!;
  if (second === first) return first;
  const third = offsetAtInstant(zone, wallMs - second * 60000)!;
  return third === second ? second : first;
}
