/**
 * FHIR dateTime values as ImagingStudy.started holds them ("2024-02-05", "2024-02-05T08:30:00+08:00"): the
 * calendar day as written, the wall-clock time as if UTC, and the offset when the value states one.
 */
export interface FhirDateTime {
  /** YYYYMMDD, the day as written (local to the value's own offset). */
  day: string;
  /** The wall-clock date and time read as UTC (ms); undefined for a date without a time. */
  wallMs?: number;
  /** The stated offset (minutes east of UTC); undefined when the value states none. */
  offsetMinutes?: number;
  /** Whether the whole string was read (nothing after the value). */
  complete: boolean;
}

const FHIR_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?/;

export function parseFhirDateTime(value: string): FhirDateTime | undefined {
  const m = FHIR_DATE_TIME.exec(value);
  if (!m) return undefined;
  const out: FhirDateTime = { day: `${m[1]}${m[2]}${m[3]}`, complete: m[0].length === value.length };
  if (m[4] === undefined) return out;
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  out.wallMs = Date.UTC(
    Number(m[1]),
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6] ?? 0),
    ms,
  );
  if (m[8] === 'Z') out.offsetMinutes = 0;
  else if (m[8]) {
    const [oh, om] = m[8].slice(1).split(':').map(Number);
    out.offsetMinutes = (m[8][0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  return out;
}

/** The instant a value names when it states its offset; undefined otherwise. */
export function statedInstant(t: FhirDateTime): number | undefined {
  return t.wallMs !== undefined && t.offsetMinutes !== undefined ? t.wallMs - t.offsetMinutes * 60_000 : undefined;
}
