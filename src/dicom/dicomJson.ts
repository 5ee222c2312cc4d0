/**
 * A typed view of DICOM JSON (PS3.18 Annex F). Reading never throws: a malformed value becomes a
 * ValueProblem for that attribute, so one bad attribute cannot take a whole study down.
 * "Missing" (no attribute) and "empty" (attribute with no Value) are kept apart, as the standard does.
 */
import {
  parseDate,
  parseDateTime,
  parseOffset,
  parseTime,
  type DicomDate,
  type DicomDateTime,
  type DicomTime,
} from '../time';
import { describeTag, Tag } from './tags';

// The DA/TM/DT grammar lives with the other date rules in src/time; readers here apply it to attributes.
export { formatDa, parseDate, parseDateTime, parseOffset, parseTime } from '../time';
export type { DicomDate, DicomDateTime, DicomTime } from '../time';

export interface PersonNameGroups {
  Alphabetic?: string;
  Ideographic?: string;
  Phonetic?: string;
}

export interface DicomAttribute {
  vr?: string;
  Value?: unknown[];
  BulkDataURI?: string;
  InlineBinary?: string;
}

/** One DICOM JSON object: attributes keyed by tag ("0020000D"). */
export type DicomDataset = Record<string, DicomAttribute>;

export type ValueProblemKind =
  | 'not-an-object'
  | 'bad-value-array'
  | 'not-a-string'
  | 'not-a-number'
  | 'bad-date'
  | 'bad-time'
  | 'bad-datetime'
  | 'bad-timezone'
  | 'bad-person-name'
  | 'bad-sequence';

export interface ValueProblem {
  tag: string;
  kind: ValueProblemKind;
  /** The offending value, as received (truncated for safety in messages, never logged with PHI tags). */
  raw: unknown;
  message: string;
}

export type AttrResult<T> =
  { kind: 'missing' } | { kind: 'empty' } | { kind: 'value'; value: T } | { kind: 'problem'; problem: ValueProblem };

export interface CodedEntry {
  code?: string;
  scheme?: string;
  schemeVersion?: string;
  meaning?: string;
}

function problem(tag: string, kind: ValueProblemKind, raw: unknown, what: string): AttrResult<never> {
  const shown = typeof raw === 'string' ? JSON.stringify(raw.slice(0, 64)) : JSON.stringify(raw)?.slice(0, 64);
  return { kind: 'problem', problem: { tag, kind, raw, message: `${describeTag(tag)}: ${what} (got ${shown})` } };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether a result item can be read as a dataset (an object, not an array); its attributes are checked on reading. */
export function isDataset(v: unknown): v is DicomDataset {
  return isRecord(v);
}

/** The attribute's Value array, or why there is none. */
export function rawValues(ds: unknown, tag: string): AttrResult<unknown[]> {
  if (!isRecord(ds)) return problem(tag, 'not-an-object', ds, 'dataset is not an object');
  // PS3.18 F.2 keys are upper-case hex; some servers send lower case (only tags with a letter differ).
  const attr = ds[tag] ?? (/[A-Fa-f]/.test(tag) ? (ds[tag.toUpperCase()] ?? ds[tag.toLowerCase()]) : undefined);
  if (attr === undefined) return { kind: 'missing' };
  if (!isRecord(attr)) return problem(tag, 'not-an-object', attr, 'attribute is not an object');
  const values = attr.Value;
  if (values === undefined || values === null) return { kind: 'empty' };
  if (!Array.isArray(values)) return problem(tag, 'bad-value-array', values, 'Value is not an array');
  // PS3.18 F.2.5: null inside Value stands for an empty value at that position.
  if (values.length === 0 || values.every((v) => v === null || v === '')) return { kind: 'empty' };
  return { kind: 'value', value: values };
}

function mapValues<T>(r: AttrResult<unknown[]>, f: (v: unknown) => AttrResult<T>): AttrResult<T[]> {
  if (r.kind !== 'value') return r;
  const out: T[] = [];
  for (const v of r.value) {
    if (v === null || v === '') continue;
    const one = f(v);
    if (one.kind === 'problem') return one;
    if (one.kind === 'value') out.push(one.value);
  }
  return out.length ? { kind: 'value', value: out } : { kind: 'empty' };
}

function first<T>(r: AttrResult<T[]>): AttrResult<T> {
  return r.kind === 'value' ? { kind: 'value', value: r.value[0] } : r;
}

/** All string values (CS, LO, SH, UI, …), trimmed of DICOM padding. */
export function readStrings(ds: unknown, tag: string): AttrResult<string[]> {
  return mapValues(rawValues(ds, tag), (v) => {
    if (typeof v === 'string') {
      const s = v.replace(/\0/g, '').trim();
      return s ? { kind: 'value', value: s } : { kind: 'empty' };
    }
    // Some servers send numbers for string VRs such as IS-like CS values; keep their text.
    if (typeof v === 'number' && Number.isFinite(v)) return { kind: 'value', value: String(v) };
    return problem(tag, 'not-a-string', v, 'expected a string');
  });
}

export function readString(ds: unknown, tag: string): AttrResult<string> {
  return first(readStrings(ds, tag));
}

/** IS/DS/US/UL…: PS3.18 allows a JSON number or a string holding one. */
export function readNumbers(ds: unknown, tag: string): AttrResult<number[]> {
  return mapValues(rawValues(ds, tag), (v) => {
    if (typeof v === 'number') {
      return Number.isFinite(v) ? { kind: 'value', value: v } : problem(tag, 'not-a-number', v, 'not a finite number');
    }
    if (typeof v === 'string') {
      const s = v.trim();
      if (!s) return { kind: 'empty' };
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return problem(tag, 'not-a-number', v, 'not a number');
      return { kind: 'value', value: Number(s) };
    }
    return problem(tag, 'not-a-number', v, 'not a number');
  });
}

export function readNumber(ds: unknown, tag: string): AttrResult<number> {
  return first(readNumbers(ds, tag));
}

/** A non-negative whole number (counts, series and instance numbers). */
export function readInteger(ds: unknown, tag: string): AttrResult<number> {
  const r = readNumber(ds, tag);
  if (r.kind === 'value' && !Number.isSafeInteger(r.value))
    return problem(tag, 'not-a-number', r.value, 'not an integer');
  return r;
}

function parsed<T>(tag: string, kind: ValueProblemKind, what: string, parse: (s: string) => T | undefined) {
  return (r: AttrResult<string>): AttrResult<T> => {
    if (r.kind !== 'value') return r;
    const v = parse(r.value);
    return v === undefined ? problem(tag, kind, r.value, what) : { kind: 'value', value: v };
  };
}

export function readDate(ds: unknown, tag: string): AttrResult<DicomDate> {
  return parsed(tag, 'bad-date', 'not a valid DA date', parseDate)(readString(ds, tag));
}

export function readTime(ds: unknown, tag: string): AttrResult<DicomTime> {
  return parsed(tag, 'bad-time', 'not a valid TM time', parseTime)(readString(ds, tag));
}

export function readDateTime(ds: unknown, tag: string): AttrResult<DicomDateTime> {
  return parsed(tag, 'bad-datetime', 'not a valid DT date-time', parseDateTime)(readString(ds, tag));
}

export function readOffset(ds: unknown, tag: string): AttrResult<number> {
  return parsed(tag, 'bad-timezone', 'not a valid UTC offset (&ZZXX)', parseOffset)(readString(ds, tag));
}

/** PN values: the JSON object form with its three component groups (PS3.18 F.2.2). */
export function readPersonNames(ds: unknown, tag: string): AttrResult<PersonNameGroups[]> {
  return mapValues(rawValues(ds, tag), (v) => {
    // A bare string is not conformant JSON PN but some servers send it; treat it as Alphabetic.
    if (typeof v === 'string') return v.trim() ? { kind: 'value', value: { Alphabetic: v.trim() } } : { kind: 'empty' };
    if (!isRecord(v)) return problem(tag, 'bad-person-name', v, 'expected a person name object');
    const out: PersonNameGroups = {};
    for (const group of ['Alphabetic', 'Ideographic', 'Phonetic'] as const) {
      const g = v[group];
      if (g === undefined || g === null) continue;
      if (typeof g !== 'string') return problem(tag, 'bad-person-name', v, `${group} is not a string`);
      if (g.trim()) out[group] = g.trim();
    }
    return Object.keys(out).length ? { kind: 'value', value: out } : { kind: 'empty' };
  });
}

export function readPersonName(ds: unknown, tag: string): AttrResult<PersonNameGroups> {
  return first(readPersonNames(ds, tag));
}

/** SQ items, each a dataset of its own. */
export function readSequence(ds: unknown, tag: string): AttrResult<DicomDataset[]> {
  return mapValues(rawValues(ds, tag), (v) =>
    isRecord(v)
      ? { kind: 'value', value: v as DicomDataset }
      : problem(tag, 'bad-sequence', v, 'sequence item is not an object'),
  );
}

/** Code Sequence items (PS3.3 Table 8.8-1): value, scheme, version, meaning. */
export function readCodes(ds: unknown, tag: string): AttrResult<CodedEntry[]> {
  const items = readSequence(ds, tag);
  if (items.kind !== 'value') return items;
  const out: CodedEntry[] = [];
  for (const item of items.value) {
    const entry: CodedEntry = {};
    const code =
      valueOf(readString(item, '00080100')) ??
      valueOf(readString(item, '00080119')) ??
      valueOf(readString(item, '00080120'));
    if (code) entry.code = code;
    const scheme = valueOf(readString(item, '00080102'));
    if (scheme) entry.scheme = scheme;
    const version = valueOf(readString(item, '00080103'));
    if (version) entry.schemeVersion = version;
    const meaning = valueOf(readString(item, '00080104'));
    if (meaning) entry.meaning = meaning;
    if (Object.keys(entry).length) out.push(entry);
  }
  return out.length ? { kind: 'value', value: out } : { kind: 'empty' };
}

/** The value, or undefined when missing, empty or malformed. */
export function valueOf<T>(r: AttrResult<T>): T | undefined {
  return r.kind === 'value' ? r.value : undefined;
}

/** A row's Study Instance UID (trimmed), or undefined when it has none: the key every layer matches rows by. */
export function studyUidOf(ds: DicomDataset): string | undefined {
  return valueOf(readString(ds, Tag.StudyInstanceUID));
}

/**
 * Reads attributes from one dataset and collects the problems it meets, for callers that want
 * plain values plus a list of what was wrong (the mapper reports them as warnings).
 */
export class DicomReader {
  readonly problems: ValueProblem[] = [];
  constructor(readonly ds: DicomDataset) {}

  private take<T>(r: AttrResult<T>): T | undefined {
    if (r.kind === 'problem') this.problems.push(r.problem);
    return valueOf(r);
  }
  string(tag: string) {
    return this.take(readString(this.ds, tag));
  }
  strings(tag: string) {
    return this.take(readStrings(this.ds, tag));
  }
  number(tag: string) {
    return this.take(readNumber(this.ds, tag));
  }
  integer(tag: string) {
    return this.take(readInteger(this.ds, tag));
  }
  date(tag: string) {
    return this.take(readDate(this.ds, tag));
  }
  time(tag: string) {
    return this.take(readTime(this.ds, tag));
  }
  dateTime(tag: string) {
    return this.take(readDateTime(this.ds, tag));
  }
  offset(tag: string) {
    return this.take(readOffset(this.ds, tag));
  }
  personName(tag: string) {
    return this.take(readPersonName(this.ds, tag));
  }
  personNames(tag: string) {
    return this.take(readPersonNames(this.ds, tag));
  }
  sequence(tag: string) {
    return this.take(readSequence(this.ds, tag));
  }
  codes(tag: string) {
    return this.take(readCodes(this.ds, tag));
  }
  has(tag: string): boolean {
    return rawValues(this.ds, tag).kind === 'value';
  }
  /** Records the problems of string attributes whose values the caller reads elsewhere, without using them. */
  recordProblems(...tags: string[]): void {
    for (const tag of tags) this.string(tag);
  }
}
