/**
 * DICOM DA, TM and DT values (PS3.5 §6.2) as plain data: parsing and formatting with no knowledge of
 * datasets, so the time layer (zones, day arithmetic) and DICOM JSON readers share one grammar.
 */

/** A calendar date as DICOM DA holds it. */
export interface DicomDate {
  year: number;
  month: number;
  day: number;
}

/** A time of day as DICOM TM holds it, keeping how much of it was given. */
export interface DicomTime {
  hour: number;
  minute?: number;
  second?: number;
  /** Fractional seconds as given, e.g. "123456" for .123456. */
  fraction?: string;
}

/** A DICOM DT: a date with optional time and optional UTC offset in minutes. */
export interface DicomDateTime {
  date: DicomDate;
  /** DT may stop at year or month; then date.month/day are 1 and `precision` says so. */
  precision: 'year' | 'month' | 'day' | 'time';
  time?: DicomTime;
  offsetMinutes?: number;
}

export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

export function parseDate(s: string): DicomDate | undefined {
  // PS3.5 DA is YYYYMMDD; "YYYY.MM.DD" is the ACR-NEMA form some old archives still send.
  const m = /^(\d{4})\.?(\d{2})\.?(\d{2})$/.exec(s.trim());
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  return { year, month, day };
}

export function parseTime(s: string): DicomTime | undefined {
  // PS3.5 TM is HH[MM[SS[.F{1,6}]]]; "HH:MM:SS" is the old form.
  const m = /^(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.(\d{1,6}))?)?)?$/.exec(s.trim());
  if (!m) return undefined;
  const hour = Number(m[1]);
  const minute = m[2] === undefined ? undefined : Number(m[2]);
  // 60 is allowed for leap seconds.
  const second = m[3] === undefined ? undefined : Number(m[3]);
  if (hour > 23 || (minute ?? 0) > 59 || (second ?? 0) > 60) return undefined;
  const t: DicomTime = { hour };
  if (minute !== undefined) t.minute = minute;
  if (second !== undefined) t.second = second;
  if (m[4] !== undefined) t.fraction = m[4];
  return t;
}

/** "+0800" / "-0530" → minutes east of UTC. */
export function parseOffset(s: string): number | undefined {
  const m = /^([+-])(\d{2})(\d{2})$/.exec(s.trim());
  if (!m) return undefined;
  const hours = Number(m[2]);
  const minutes = Number(m[3]);
  if (hours > 14 || minutes > 59) return undefined;
  return (m[1] === '-' ? -1 : 1) * (hours * 60 + minutes);
}

export function parseDateTime(s: string): DicomDateTime | undefined {
  const m = /^(\d{4})(\d{2})?(\d{2})?(\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?([+-]\d{4})?$/.exec(s.trim());
  if (!m) return undefined;
  const year = Number(m[1]);
  const month = m[2] ? Number(m[2]) : 1;
  const day = m[3] ? Number(m[3]) : 1;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  const dt: DicomDateTime = { date: { year, month, day }, precision: m[3] ? 'day' : m[2] ? 'month' : 'year' };
  if (m[4]) {
    if (!m[3]) return undefined;
    const time = parseTime(m[4]);
    if (!time) return undefined;
    dt.time = time;
    dt.precision = 'time';
  }
  if (m[5]) {
    const off = parseOffset(m[5]);
    if (off === undefined) return undefined;
    dt.offsetMinutes = off;
  }
  return dt;
}

/** Formats a DicomDate as DICOM DA (YYYYMMDD), for queries. */
export function formatDa(d: DicomDate): string {
  return `${String(d.year).padStart(4, '0')}${String(d.month).padStart(2, '0')}${String(d.day).padStart(2, '0')}`;
}
