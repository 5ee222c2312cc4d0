/**
 * How QIDO-RS matching values go on the wire, so that one query works on strict servers (RFC 3986,
 * percent-decoding) and on Debian 12's Orthanc 1.10, which never percent-decodes query values and
 * answers 400 to raw non-ASCII bytes. Measured on Orthanc 1.10 + DICOMweb 1.7:
 *   PatientName=Doe^Peter → match; Doe%5EPeter, Doe%3FPeter → nothing; ID%201 / ID+1 → nothing;
 *   raw UTF-8 → 400; Doe?Peter (single-character wildcard) → match; *1 → matches 病人1.
 * On such a server a name or description that cannot be sent as itself is widened with DICOM wildcards
 * (PS3.4 C.2.2.2.4) and the answers are narrowed here. In on-demand lookups (`exactIdentifiers`) a value
 * identifying a patient or a study (Patient ID, Accession Number, Study ID, UIDs) is never widened: it
 * goes out exactly or not at all (InexactValueError). A source marked `percentDecodesQueryValues` gets every value
 * percent-encoded, exactly.
 */
import { rawValues, type DicomDataset, Tag } from '../dicom';

/** Characters every server takes raw in a query value: RFC 3986 unreserved, plus `*` and `,`. */
const SAFE = /^[A-Za-z0-9\-._~*,]$/;
/** VRs allowing Wild Card Matching (PS3.4 C.2.2.2.4). */
const WILDCARD_VRS = new Set(['AE', 'CS', 'LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UR', 'UT']);

/** VRs of the attributes the bridge matches on; unknown keys are treated as not wildcard-capable. */
const VR_BY_TAG: Record<string, string> = {
  [Tag.PatientName]: 'PN',
  [Tag.ReferringPhysicianName]: 'PN',
  [Tag.NameOfPhysiciansReadingStudy]: 'PN',
  [Tag.PerformingPhysicianName]: 'PN',
  [Tag.OperatorsName]: 'PN',
  [Tag.PatientID]: 'LO',
  [Tag.IssuerOfPatientID]: 'LO',
  [Tag.StudyDescription]: 'LO',
  [Tag.SeriesDescription]: 'LO',
  [Tag.InstitutionName]: 'LO',
  [Tag.InstitutionalDepartmentName]: 'LO',
  [Tag.AccessionNumber]: 'SH',
  [Tag.StudyID]: 'SH',
  [Tag.ModalitiesInStudy]: 'CS',
  [Tag.Modality]: 'CS',
  [Tag.BodyPartExamined]: 'CS',
  [Tag.PatientSex]: 'CS',
  [Tag.Laterality]: 'CS',
  [Tag.StudyInstanceUID]: 'UI',
  [Tag.SeriesInstanceUID]: 'UI',
  [Tag.SOPInstanceUID]: 'UI',
  [Tag.SOPClassUID]: 'UI',
  [Tag.StudyDate]: 'DA',
  [Tag.SeriesDate]: 'DA',
  [Tag.PatientBirthDate]: 'DA',
  [Tag.StudyTime]: 'TM',
  [Tag.SeriesTime]: 'TM',
};

/** Attributes that identify a patient or a study: a wildcard in them would reach other patients' data. */
const IDENTIFYING_TAGS = new Set<string>([
  Tag.PatientID,
  Tag.IssuerOfPatientID,
  Tag.AccessionNumber,
  Tag.StudyID,
  Tag.StudyInstanceUID,
  Tag.SeriesInstanceUID,
  Tag.SOPInstanceUID,
]);

/** How one source reads query values, and how strictly a query must be sent. */
export interface WireOptions {
  /** The server percent-decodes query values (RFC 3986, as PS3.18 says); Orthanc 1.10 does not. */
  percentDecodes?: boolean;
  /**
   * Identifying values go out exactly or not at all (InexactValueError): on-demand lookups, where a
   * widened Patient ID would fetch other patients' rows. Sweeps of the whole PACS (sync) may widen a filter.
   */
  exactIdentifiers?: boolean;
}

/** A value that cannot be sent exactly to this source, for an attribute that must never be widened. */
export class InexactValueError extends Error {
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`${key}: ${reason}`);
    this.name = 'InexactValueError';
  }
}

/**
 * Why `value` cannot travel as itself to this source (undefined: it can): characters outside the
 * raw-safe set go only percent-encoded, which only a percent-decoding server reads back as themselves.
 */
export function unsendableReason(value: string, o: WireOptions = {}): string | undefined {
  if (o.percentDecodes) return undefined;
  const bad = [...value].find((c) => !SAFE.test(c) && c !== '?');
  if (bad === undefined) return undefined;
  return bad.codePointAt(0)! > 0x7f
    ? 'this PACS cannot be sent non-ASCII characters exactly (it does not percent-decode query values)'
    : `this PACS cannot be sent "${bad}" exactly (it does not percent-decode query values)`;
}

/**
 * Why `value` cannot be asked for exactly as an identifying attribute (undefined: it can): also
 * wildcard characters and an empty value, which would match other patients' studies.
 */
export function inexactReason(value: string, o: WireOptions = {}): string | undefined {
  if (value === '') return 'an empty value matches every study';
  if (/[*?]/.test(value)) return '"*" and "?" are DICOM wildcards';
  return unsendableReason(value, o);
}

/** One identifying matching key sent exactly as given, or InexactValueError (never widened, never a wildcard). */
export function exactParam(key: string, value: string, o: WireOptions = {}): [string, string] {
  const why = inexactReason(value, o);
  if (why) throw new InexactValueError(key, why);
  return [resolveKey(key), wireValue(value, false, o).wire];
}

export function isIdentifyingKey(key: string): boolean {
  return IDENTIFYING_TAGS.has(resolveKey(key));
}

/** "PatientName" or "00100010" (any case) → "00100010"; anything else is passed on as given. */
export function resolveKey(key: string): string {
  if (/^[0-9A-Fa-f]{8}$/.test(key)) return key.toUpperCase();
  return (Tag as Record<string, string>)[key] ?? key;
}

/**
 * The wire form of one value. Wildcard-capable attributes: a run of characters that cannot travel
 * raw becomes `*` if it holds any non-ASCII character (Orthanc's `?` does not match those) and one
 * `?` per character otherwise. Other attributes (UIDs, dates, times) are percent-encoded where
 * needed, which their character sets never require.
 */
export function wireValue(value: string, wildcard: boolean, o: WireOptions = {}): { wire: string; widened: boolean } {
  if (o.percentDecodes) {
    // Exact for every VR: the server decodes what is encoded; "*"/"?" stay the caller's wildcards.
    return {
      wire: [...value].map((c) => (SAFE.test(c) || c === '?' ? c : encodeURIComponent(c))).join(''),
      widened: false,
    };
  }
  let wire = '';
  let widened = false;
  let run: string[] = [];
  const flush = () => {
    if (!run.length) return;
    widened = true;
    wire += run.some((c) => c.codePointAt(0)! > 0x7f) ? '*' : '?'.repeat(run.length);
    run = [];
  };
  for (const c of value) {
    if (SAFE.test(c) || (wildcard && c === '?')) {
      flush();
      wire += c;
    } else if (wildcard) {
      run.push(c);
    } else {
      wire += encodeURIComponent(c);
    }
  }
  flush();
  return { wire, widened };
}

/** A matching key whose value was widened on the wire; answers are checked against the original. */
export interface LocalFilter {
  tag: string;
  value: string;
  personName: boolean;
}

export interface PlannedQuery {
  /** Keys and wire-ready values, in order. */
  params: Array<[string, string]>;
  filters: LocalFilter[];
}

export function planMatch(match: Record<string, string> = {}, o: WireOptions = {}): PlannedQuery {
  const params: Array<[string, string]> = [];
  const filters: LocalFilter[] = [];
  for (const [key, value] of Object.entries(match)) {
    const tag = resolveKey(key);
    if (o.exactIdentifiers && IDENTIFYING_TAGS.has(tag)) {
      // Never widened: the caller's own "*" and UID lists ("a,b") stay theirs.
      const why = unsendableReason(value, o);
      if (why) throw new InexactValueError(key, why);
    }
    if (tag === Tag.ModalitiesInStudy && value !== '') {
      // Orthanc 1.10 returns nothing past offset 0 when ModalitiesInStudy is a matching key, so paged
      // results would be lost. The studies are listed unfiltered and matched here (any listed modality).
      filters.push({ tag, value, personName: false });
      continue;
    }
    const vr = VR_BY_TAG[tag];
    const { wire, widened } = wireValue(value, vr !== undefined && WILDCARD_VRS.has(vr), o);
    if (vr === 'PN' && !value.includes('=') && value !== '') {
      // A name without "=" means any component group, but Orthanc matches it against the whole
      // stored "Alphabetic=Ideographic" string: ask for a prefix match and check here.
      const prefix = wire.endsWith('*') ? wire : `${wire}*`;
      // Never a bare "*": leaving the key off asks the same, and the local filter decides.
      if (prefix !== '*') params.push([tag, prefix]);
      filters.push({ tag, value, personName: true });
      continue;
    }
    if (widened && /^\*+$/.test(wire)) {
      filters.push({ tag, value, personName: vr === 'PN' });
      continue;
    }
    params.push([tag, wire]);
    if (widened) filters.push({ tag, value, personName: vr === 'PN' });
  }
  return { params, filters };
}

function wildcardRegExp(pattern: string, caseInsensitive: boolean): RegExp {
  const body = [...pattern]
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, caseInsensitive ? 'iu' : 'u');
}

/** PN values as comparable strings: each component group and the full "A=I=P" form. */
function personNameForms(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (typeof v !== 'object' || v === null) return [];
  const g = v as Record<string, unknown>;
  const groups = ['Alphabetic', 'Ideographic', 'Phonetic'].map((k) =>
    typeof g[k] === 'string' ? (g[k] as string) : '',
  );
  return [...groups.filter(Boolean), groups.join('=').replace(/=+$/, '')];
}

const trimPn = (s: string) => s.trim().replace(/\^+(?==|$)/g, '');

/**
 * Whether a returned dataset satisfies the widened keys exactly. An attribute the server did not
 * return is given the benefit of the doubt: dropping a study is worse than an extra one.
 */
export function matchesLocally(ds: DicomDataset, filters: LocalFilter[]): boolean {
  return filters.every((f) => {
    const r = rawValues(ds, f.tag);
    if (r.kind === 'missing' || r.kind === 'problem') return true;
    if (r.kind === 'empty') return false;
    const candidates = f.personName
      ? r.value.flatMap(personNameForms).map(trimPn)
      : r.value
          .filter((v): v is string | number => typeof v === 'string' || typeof v === 'number')
          .map((v) => String(v).trim());
    const alternatives = f.value.split(',').map((p) => (f.personName ? trimPn(p) : p.trim()));
    return alternatives.some((p) => {
      const re = wildcardRegExp(p, f.personName);
      return candidates.some((c) => re.test(c));
    });
  });
}
