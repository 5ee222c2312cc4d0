/**
 * The search parameters the API supports, and the parser that turns a query string into validated
 * criteria. Everything a PACS could read as a wildcard, an empty-value match or a second value is
 * refused here, before any PACS request. The same table drives the CapabilityStatement, so the
 * statement lists exactly what this parser accepts.
 */
import { parseDateValue, type DateValue } from './dates';
import { parseElements } from './elements';
import { parseLastUpdated, type LastUpdatedValue } from './lastUpdated';
import { badRequest, FhirError } from './outcome';
import { LIVE_LAST_UPDATED, parseSort, SORT_CURSOR_RE, type SortKey } from './sort';

export const DICOM_UID_SYSTEM = 'urn:dicom:uid';
export const DCM_SYSTEM = 'http://dicom.nema.org/resources/ontology/DCM';
export const IMAGING_STUDY_STATUSES = ['registered', 'available', 'cancelled', 'entered-in-error', 'unknown'] as const;

export type ParamType = 'token' | 'reference' | 'date' | 'number' | 'string';
export type ApiMode = 'live' | 'store';

export interface ParamDef {
  name: string;
  type: ParamType;
  /** FHIR SearchParameter canonical, when the parameter is a standard one. */
  definition?: string;
  documentation: string;
  /** Narrows a search enough to be sent to the PACS on its own. */
  restricting?: boolean;
  /** Modifiers (":identifier") and chains (".identifier") accepted after the name. */
  modifiers?: string[];
  chains?: string[];
  /** The modes the parameter works in, when not both (the CapabilityStatement lists it only there). */
  modes?: ApiMode[];
}

const SP = 'http://hl7.org/fhir/SearchParameter/';

export const IMAGING_STUDY_PARAMS: ParamDef[] = [
  {
    name: '_id',
    type: 'token',
    definition: `${SP}Resource-id`,
    restricting: true,
    documentation: 'ImagingStudy id (= Study Instance UID); several ids separated by commas (UID-list matching).',
  },
  {
    name: 'identifier',
    type: 'token',
    definition: `${SP}ImagingStudy-identifier`,
    restricting: true,
    documentation:
      'Study Instance UID as urn:dicom:uid|urn:oid:<uid> (or urn:oid:<uid> alone), or Accession Number with or without its system; a configured Study ID system searches Study ID.',
  },
  {
    name: 'patient',
    type: 'reference',
    definition: `${SP}ImagingStudy-patient`,
    restricting: true,
    modifiers: ['identifier'],
    chains: ['identifier'],
    documentation:
      'Patient/<id> (needs api.patientIdRule), or patient:identifier=system|value / patient.identifier=system|value matching Patient ID and its issuer system.',
  },
  {
    name: 'subject',
    type: 'reference',
    definition: `${SP}ImagingStudy-subject`,
    restricting: true,
    modifiers: ['identifier'],
    chains: ['identifier'],
    documentation: 'As patient (subjects are always Patients here).',
  },
  {
    name: 'started',
    type: 'date',
    definition: `${SP}ImagingStudy-started`,
    restricting: true,
    documentation:
      "eq, ge, gt, le, lt with a date (local study date) or a dateTime (instant); repeat for a range. StudyDate ranges at the PACS; exact matching on each study's own offset.",
  },
  {
    name: 'modality',
    type: 'token',
    definition: `${SP}ImagingStudy-modality`,
    documentation: `Modality code (system ${DCM_SYSTEM} or none); one code per parameter. Not restricting on its own.`,
  },
  {
    name: 'status',
    type: 'token',
    definition: `${SP}ImagingStudy-status`,
    documentation:
      'available or registered (the statuses the mapping produces); several separated by commas. Not restricting on its own.',
  },
  {
    name: 'series',
    type: 'token',
    definition: `${SP}ImagingStudy-series`,
    restricting: true,
    documentation:
      'Series Instance UID of a series in the study; several separated by commas. A series-level query finds the studies holding them.',
  },
  {
    name: '_lastUpdated',
    type: 'date',
    definition: `${SP}Resource-lastUpdated`,
    restricting: true,
    modes: ['store'],
    documentation:
      "Store mode only: the stored resource's meta.lastUpdated, with eq, ne, gt, lt, ge, le, sa, eb or ap (a tenth of the distance from now either side); repeat for a range. A value without an offset is UTC. Live mode answers 400: the PACS keeps no last-updated time.",
  },
];

export const RESULT_PARAMS: ParamDef[] = [
  { name: '_count', type: 'number', documentation: 'Page size, capped at the configured maximum.' },
  { name: '_summary', type: 'token', documentation: 'count: only Bundle.total.' },
  { name: '_cursor', type: 'string', documentation: 'Paging position, as given in next/previous links.' },
  {
    name: '_format',
    type: 'token',
    documentation: 'json or a JSON media type; anything else (XML) is answered 406. Not carried into links.',
  },
  { name: '_pretty', type: 'token', documentation: 'true: indented JSON. Not carried into links.' },
  {
    name: '_elements',
    type: 'token',
    documentation:
      'Top-level element names, separated by commas: matches keep those, their mandatory elements, id and meta, and are tagged SUBSETTED (included resources stay whole).',
  },
];

/** Result parameters of ImagingStudy searches only. */
export const SORT_PARAM: ParamDef = {
  name: '_sort',
  type: 'string',
  documentation:
    'started, -started (both modes); _lastUpdated, -_lastUpdated (store mode only); several separated by commas. Studies without the value come last; ties by id. Paging follows the sort (links carry the last position shown). Orders all matches, so it is refused (400) beyond api.maxCountScan of them.',
};

/** The parameters of each resource type's search in a mode: what the parser accepts there. */
export function imagingStudyParams(mode: ApiMode): ParamDef[] {
  return [...IMAGING_STUDY_PARAMS, ...RESULT_PARAMS, SORT_PARAM].filter((p) => !p.modes || p.modes.includes(mode));
}

export function endpointParams(): ParamDef[] {
  return [...ENDPOINT_PARAMS, ...RESULT_PARAMS.filter((p) => p.name !== '_cursor')];
}

export const ENDPOINT_PARAMS: ParamDef[] = [
  { name: '_id', type: 'token', definition: `${SP}Resource-id`, documentation: 'Endpoint id (pacs-<source id>).' },
];

export const INCLUDE_VALUES = ['ImagingStudy:endpoint'];

export type TokenValue = { system?: string; value: string };

export type Criterion =
  | { param: string; kind: 'studyUid'; uids: string[] }
  | { param: string; kind: 'identifier'; token: TokenValue }
  | { param: string; kind: 'patientId'; patientId: string; system?: string; reference: string }
  | { param: string; kind: 'patientIdentifier'; token: TokenValue }
  | { param: string; kind: 'started'; value: DateValue }
  | { param: string; kind: 'modality'; token: TokenValue }
  | { param: string; kind: 'status'; statuses: string[] }
  | { param: string; kind: 'series'; uids: string[] }
  | { param: string; kind: 'lastUpdated'; value: LastUpdatedValue };

export interface ParsedSearch {
  criteria: Criterion[];
  count: number;
  summaryCount: boolean;
  includeEndpoint: boolean;
  cursor?: string;
  /** `_sort` keys in order; empty when the search is not sorted. */
  sort: SortKey[];
  /** `_elements`: the top-level elements matches keep. */
  elements?: string[];
  pretty: boolean;
  /** Accepted parameters, normalised, in the order given: the Bundle's self link. */
  used: [string, string][];
  /** Names of parameters that were ignored. */
  ignored: string[];
}

export interface ParseOptions {
  defaultCount: number;
  maxCount: number;
  maxValueLength: number;
  /** Unknown parameters refused (400), else ignored (`Prefer: handling=lenient`). */
  strict: boolean;
  /** Live mode refuses what only the store knows (_lastUpdated). */
  mode?: ApiMode;
  patientIdRule?: { prefix: string; suffix: string; system?: string };
}

const UID_RE = /^[0-9]+(\.[0-9]+)*$/;
const FHIR_ID_RE = /^[A-Za-z0-9.-]{1,64}$/;
/** DICOM CS: upper-case letters, digits, space and underscore, at most 16. */
const CS_RE = /^[A-Z0-9_ ]{1,16}$/;
const CURSOR_RE = /^\d{1,3}(\.\d{1,9}){1,65}$/;
const DUPLICATE_ONCE = ['_count', '_sort', '_elements', '_pretty'];
/** Characters a PACS reads as wildcards or value separators, and control characters (line breaks). */
const FORBIDDEN = /[*?\\\u0000-\u001f\u007f]/;

export function isUidLike(s: string): boolean {
  return s.length <= 64 && UID_RE.test(s);
}

/** Checks every value for what no parameter may contain. */
function checkCommon(name: string, value: string, maxLength: number): void {
  if (value === '') throw badRequest(`Parameter "${name}" has an empty value; empty values are not accepted.`, name);
  if (/[\r\n]/.test(value)) throw badRequest(`Parameter "${name}" contains a line break.`, name);
  if (/[*?]/.test(value))
    throw badRequest(`Parameter "${name}" contains "*" or "?"; wildcards are not accepted.`, name);
  if (value.includes('\\'))
    throw badRequest(`Parameter "${name}" contains "\\", which DICOM reads as a value separator.`, name);
  if (FORBIDDEN.test(value)) throw badRequest(`Parameter "${name}" contains a control character.`, name);
  if (value.length > maxLength) throw badRequest(`Parameter "${name}" is longer than ${maxLength} characters.`, name);
}

function splitOr(name: string, value: string): string[] {
  const parts = value.split(',');
  if (parts.some((p) => p === ''))
    throw badRequest(`Parameter "${name}" has an empty value in its comma-separated list.`, name);
  return parts;
}

function single(name: string, value: string): string {
  if (value.includes(','))
    throw badRequest(`Parameter "${name}" takes one value per parameter (no comma-separated list).`, name);
  return value;
}

function parseToken(name: string, raw: string): TokenValue {
  const bar = raw.indexOf('|');
  if (bar < 0) return { value: raw };
  const system = raw.slice(0, bar);
  const value = raw.slice(bar + 1);
  if (value === '')
    throw badRequest(
      `Parameter "${name}" has a system but no value; searching by system alone is not supported.`,
      name,
    );
  if (value.includes('|')) throw badRequest(`Parameter "${name}" has more than one "|".`, name);
  return system === '' ? { system: '', value } : { system, value };
}

function requireUid(name: string, uid: string, what: string): string {
  if (!isUidLike(uid))
    throw badRequest(`Parameter "${name}": "${uid}" is not a ${what} (digits and dots, at most 64 characters).`, name);
  return uid;
}

/** DICOM SH/LO values (accession numbers, patient ids) in matching: no separators or wildcards. */
function requireDicomString(name: string, value: string, max: number, what: string): string {
  if (value.length > max) throw badRequest(`Parameter "${name}": a ${what} has at most ${max} characters.`, name);
  if (/^\s|\s$/.test(value))
    throw badRequest(`Parameter "${name}": leading or trailing spaces are not accepted.`, name);
  return value;
}

function parseIdentifier(name: string, raw: string): Criterion {
  const token = parseToken(name, single(name, raw));
  const isUidSystem = token.system === DICOM_UID_SYSTEM;
  if (isUidSystem || (token.system === undefined && token.value.startsWith('urn:oid:'))) {
    if (!token.value.startsWith('urn:oid:'))
      throw badRequest(`Parameter "${name}": Study Instance UIDs are written urn:dicom:uid|urn:oid:<uid>.`, name);
    return { param: name, kind: 'studyUid', uids: [requireUid(name, token.value.slice(8), 'Study Instance UID')] };
  }
  requireDicomString(name, token.value, 64, 'identifier value');
  return { param: name, kind: 'identifier', token };
}

function parsePatient(name: string, base: string, suffix: string | undefined, raw: string, o: ParseOptions): Criterion {
  const value = single(name, raw);
  if (suffix === 'identifier') {
    const token = parseToken(name, value);
    requireDicomString(name, token.value, 64, 'Patient ID');
    return { param: name, kind: 'patientIdentifier', token };
  }
  const ref = /^(?:Patient\/)?([^/]+)$/.exec(value);
  if (!ref) throw badRequest(`Parameter "${base}": only Patient references (Patient/<id>) are supported.`, name);
  const id = ref[1];
  if (!FHIR_ID_RE.test(id)) throw badRequest(`Parameter "${base}": "${id}" is not a valid Patient id.`, name);
  const rule = o.patientIdRule;
  if (!rule)
    throw new FhirError(
      400,
      'not-supported',
      `Parameter "${base}": searching by Patient id needs a configured Patient id rule (api.patientIdRule); use ${base}:identifier=system|value.`,
      name,
    );
  if (
    !id.startsWith(rule.prefix) ||
    !id.endsWith(rule.suffix) ||
    id.length <= rule.prefix.length + rule.suffix.length
  ) {
    throw badRequest(`Parameter "${base}": Patient id "${id}" does not follow this server's Patient id rule.`, name);
  }
  const patientId = id.slice(rule.prefix.length, id.length - rule.suffix.length);
  return { param: name, kind: 'patientId', patientId, system: rule.system, reference: `Patient/${id}` };
}

/** Splits "patient:identifier" / "patient.identifier" into the base name and its suffix. */
function splitName(name: string): { base: string; modifier?: string; chain?: string } {
  const m = /^([^:.]+)(?::([^.]+))?(?:\.(.+))?$/.exec(name);
  if (!m) return { base: name };
  return { base: m[1], modifier: m[2], chain: m[3] };
}

/** Strict handling unless the client sends `Prefer: handling=lenient`: an ignored misspelt filter widens a search. */
export function wantsStrict(prefer: string | undefined): boolean {
  return !prefer || !prefer.split(/[,;]/).some((p) => p.trim().toLowerCase() === 'handling=lenient');
}

const KNOWN_PARAMS = new Map([...IMAGING_STUDY_PARAMS, ...RESULT_PARAMS, SORT_PARAM].map((p) => [p.name, p]));
const RESULT_PARAM_NAMES = new Set([...RESULT_PARAMS, SORT_PARAM].map((p) => p.name));

/** The definition a parameter name refers to after checking its modifier or chain; undefined when unknown. */
function definitionOf(name: string, o: ParseOptions): { def: ParamDef; base: string; suffix?: string } | undefined {
  const { base, modifier, chain } = splitName(name);
  const def = KNOWN_PARAMS.get(base);
  if (!def) {
    if (o.strict) throw badRequest(`Parameter "${name}" is not supported by this server.`, name);
    return undefined;
  }
  const suffix = modifier ?? chain;
  if (modifier && chain)
    throw badRequest(`Parameter "${name}" combines a modifier and a chain, which is not supported.`, name);
  if (suffix !== undefined) {
    const allowed = modifier ? def.modifiers : def.chains;
    if (!allowed?.includes(suffix))
      throw badRequest(`Parameter "${name}": ${modifier ? 'modifier' : 'chain'} "${suffix}" is not supported.`, name);
  }
  return { def, base, suffix };
}

function parseUidList(name: string, value: string, o: ParseOptions, what: string, plural: string): string[] {
  const uids = splitOr(name, value).map((v) => requireUid(name, v, what));
  if (uids.length > o.maxCount) throw badRequest(`Parameter "${name}" lists more than ${o.maxCount} ${plural}.`, name);
  return uids;
}

function parseModality(name: string, value: string): Criterion {
  const token = parseToken(name, single(name, value));
  if (!CS_RE.test(token.value))
    throw badRequest(
      `Parameter "modality": "${token.value}" is not a DICOM modality code (upper-case letters and digits, at most 16).`,
      name,
    );
  return { param: name, kind: 'modality', token };
}

function parseStatus(name: string, value: string): Criterion {
  const statuses = splitOr(name, value);
  for (const s of statuses) {
    if (!(IMAGING_STUDY_STATUSES as readonly string[]).includes(s))
      throw badRequest(
        `Parameter "status": "${s}" is not an ImagingStudy status (${IMAGING_STUDY_STATUSES.join(', ')}).`,
        name,
      );
  }
  return { param: name, kind: 'status', statuses };
}

/** One ImagingStudy search parameter (already checked for what no value may contain) → its criterion. */
function parseCriterion(
  name: string,
  base: string,
  suffix: string | undefined,
  value: string,
  o: ParseOptions,
): Criterion {
  switch (base) {
    case '_id': {
      const uids = parseUidList(name, value, o, 'ImagingStudy id (a Study Instance UID)', 'ids');
      return { param: name, kind: 'studyUid', uids };
    }
    case 'identifier':
      return parseIdentifier(name, value);
    case 'patient':
    case 'subject':
      return parsePatient(name, base, suffix, value, o);
    case 'started': {
      const v = parseDateValue(single(name, value));
      if (typeof v === 'string') throw badRequest(`Parameter "started": ${v}.`, name);
      return { param: name, kind: 'started', value: v };
    }
    case 'modality':
      return parseModality(name, value);
    case 'status':
      return parseStatus(name, value);
    case 'series':
      return { param: name, kind: 'series', uids: parseUidList(name, value, o, 'Series Instance UID', 'UIDs') };
    case '_lastUpdated':
      return parseLastUpdatedCriterion(name, value, o);
  }
  throw new Error(`no parser for search parameter ${base}`); // IMAGING_STUDY_PARAMS and this switch disagree
}

function parseLastUpdatedCriterion(name: string, value: string, o: ParseOptions): Criterion {
  if (o.mode === 'live')
    throw new FhirError(
      400,
      'not-supported',
      `Parameter "_lastUpdated" is not supported in live mode: ${LIVE_LAST_UPDATED}.`,
      name,
    );
  const v = parseLastUpdated(single(name, value));
  if (typeof v === 'string') throw badRequest(`Parameter "_lastUpdated": ${v}.`, name);
  return { param: name, kind: 'lastUpdated', value: v };
}

function parsePretty(name: string, value: string): boolean {
  if (value !== 'true' && value !== 'false') throw badRequest(`_pretty must be true or false.`, name);
  return value === 'true';
}

/**
 * A result parameter (_count, _summary, _cursor, _format, _pretty, _sort, _elements) applied to the parsed
 * search. Returns whether the self link carries it as given (_count is added as effective, links set their
 * own _cursor, _format and _pretty are dropped).
 */
function applyResultParam(
  out: ParsedSearch,
  name: string,
  value: string,
  o: ParseOptions,
  given: Set<string>,
): boolean {
  if (DUPLICATE_ONCE.includes(name) && given.has(name)) throw badRequest(`${name} is given twice.`, name);
  given.add(name);
  switch (name) {
    case '_count':
      if (!/^\d{1,6}$/.test(value) || Number(value) < 1)
        throw badRequest(`_count must be a whole number from 1 (the most per page is ${o.maxCount}).`, name);
      out.count = Math.min(Number(value), o.maxCount);
      break;
    case '_sort':
      out.sort = parseSort(name, value, o.mode === 'live');
      return true;
    case '_elements':
      out.elements = parseElements(name, value, 'ImagingStudy');
      return true;
    case '_pretty':
      out.pretty = parsePretty(name, value);
      break;
    case '_summary':
      if (value !== 'count' && value !== 'false')
        throw badRequest(`_summary=${value} is not supported (supported: count, false).`, name);
      out.summaryCount = value === 'count';
      return true;
    case '_cursor':
      if (!CURSOR_RE.test(value) && !SORT_CURSOR_RE.test(value))
        throw badRequest('_cursor is not a paging position this server gave out.', name);
      if (out.cursor !== undefined) throw badRequest('_cursor is given twice.', name);
      out.cursor = value;
      break;
    case '_format':
      break; // checked (406 unless JSON) before the search; answers are always JSON
  }
  return false;
}

function parseInclude(out: ParsedSearch, name: string, value: string, o: ParseOptions): void {
  checkCommon(name, value, o.maxValueLength);
  if (!INCLUDE_VALUES.includes(value))
    throw badRequest(`_include=${value} is not supported (supported: ${INCLUDE_VALUES.join(', ')}).`, name);
  out.includeEndpoint = true;
  out.used.push([name, value]);
}

/** ImagingStudy search: query pairs as received → criteria, page and self-link parameters. */
export function parseImagingStudySearch(pairs: [string, string][], o: ParseOptions): ParsedSearch {
  const out: ParsedSearch = {
    criteria: [],
    count: o.defaultCount,
    summaryCount: false,
    includeEndpoint: false,
    sort: [],
    pretty: false,
    used: [],
    ignored: [],
  };
  const given = new Set<string>();
  for (const [name, value] of pairs) {
    if (name === '_include') {
      parseInclude(out, name, value, o);
      continue;
    }
    const param = definitionOf(name, o);
    if (!param) {
      out.ignored.push(name);
      continue;
    }
    checkCommon(name, value, o.maxValueLength);
    if (RESULT_PARAM_NAMES.has(param.base)) {
      if (applyResultParam(out, param.base, value, o, given)) out.used.push([name, value]);
      continue;
    }
    out.criteria.push(parseCriterion(name, param.base, param.suffix, value, o));
    out.used.push([name, value]);
  }
  return out;
}

export interface ParsedEndpointSearch {
  ids?: string[];
  count: number;
  summaryCount: boolean;
  elements?: string[];
  pretty: boolean;
  used: [string, string][];
  ignored: string[];
}

/** Endpoint search: the configured sources' Endpoints, optionally by id. */
export function parseEndpointSearch(pairs: [string, string][], o: ParseOptions): ParsedEndpointSearch {
  const out: ParsedEndpointSearch = {
    count: o.defaultCount,
    summaryCount: false,
    pretty: false,
    used: [],
    ignored: [],
  };
  for (const [name, value] of pairs) {
    if (!ENDPOINT_NAMES.has(name)) {
      if (o.strict) throw badRequest(`Parameter "${name}" is not supported by this server.`, name);
      out.ignored.push(name);
      continue;
    }
    checkCommon(name, value, o.maxValueLength);
    if (name === '_id') {
      const ids = splitOr(name, value);
      for (const id of ids)
        if (!FHIR_ID_RE.test(id)) throw badRequest(`Parameter "_id": "${id}" is not a valid id.`, name);
      out.ids = out.ids ? out.ids.filter((i) => ids.includes(i)) : ids;
      out.used.push([name, value]);
    } else if (name === '_count') {
      if (!/^\d{1,6}$/.test(value) || Number(value) < 1)
        throw badRequest(`_count must be a whole number from 1 (the most per page is ${o.maxCount}).`, name);
      out.count = Math.min(Number(value), o.maxCount);
    } else if (name === '_summary') {
      if (value !== 'count' && value !== 'false')
        throw badRequest(`_summary=${value} is not supported (supported: count, false).`, name);
      out.summaryCount = value === 'count';
      out.used.push([name, value]);
    } else if (name === '_elements') {
      out.elements = parseElements(name, value, 'Endpoint');
      out.used.push([name, value]);
    } else if (name === '_pretty') out.pretty = parsePretty(name, value);
    // _format: checked before the search (406 unless JSON).
  }
  return out;
}

const ENDPOINT_NAMES = new Set(endpointParams().map((p) => p.name));

/** Whether a search narrows the PACS query enough to be sent on its own. */
export function isRestricted(criteria: Criterion[]): boolean {
  const restricting = new Set(IMAGING_STUDY_PARAMS.filter((p) => p.restricting).map((p) => p.name));
  return criteria.some((c) => restricting.has(c.param.split(/[:.]/)[0]));
}

/** Valid ImagingStudy id for a read: ids are Study Instance UIDs. */
export function parseStudyId(id: string): string {
  if (id === '' || id.length > 64 || !UID_RE.test(id))
    throw badRequest(
      `"${id.slice(0, 80)}" is not an ImagingStudy id on this server (ids are Study Instance UIDs: digits and dots, at most 64 characters).`,
    );
  return id;
}

export function parseEndpointId(id: string): string {
  if (!FHIR_ID_RE.test(id)) throw badRequest(`"${id.slice(0, 80)}" is not a valid Endpoint id.`);
  return id;
}
