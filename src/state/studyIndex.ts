/**
 * The search index over stored ImagingStudy resources, the part every backend shares: what one study
 * contributes (its row and tokens) and the filter a search pushes down. An index narrows, the API's matcher
 * decides: every condition is a superset of what the FHIR matcher accepts (token values only, never systems).
 *
 * Per study: its source, local start day, start instant when the study states its offset, status; and its
 * multi-valued search keys: uid (resource id and urn:dicom:uid identifiers), identifier (every identifier
 * value), patient (the subject's identifier value), subject (the subject reference when it has no
 * identifier), modality (study and series codes) and series (Series Instance UIDs).
 */
import type { ImagingStudy } from 'fhir/r4';
import { parseFhirDateTime, statedInstant } from '../time';

const DICOM_UID_SYSTEM = 'urn:dicom:uid';

export type TokenKind = 'uid' | 'identifier' | 'patient' | 'subject' | 'modality' | 'series';

export interface StudyIndexRow {
  resourceId: string;
  sourceId: string | null;
  startedDay: string | null;
  startedMs: number | null;
  status: string | null;
  tokens: { kind: TokenKind; value: string }[];
}

function subjectIdentifierValue(study: ImagingStudy): string | undefined {
  const subject = study.subject;
  if (subject?.identifier) return subject.identifier.value;
  const m = subject?.reference && /^Patient\?identifier=(.*)$/.exec(subject.reference);
  if (!m) return undefined;
  let raw: string;
  try {
    raw = decodeURIComponent(m[1]);
  } catch {
    return undefined; // the matcher cannot read it either
  }
  const bar = raw.indexOf('|');
  return bar < 0 ? raw : raw.slice(bar + 1);
}

/** What the index holds for one stored ImagingStudy. Pure. */
export function studyIndexRow(study: ImagingStudy, resourceId: string, sourceId: string | null): StudyIndexRow {
  const tokens = new Map<string, { kind: TokenKind; value: string }>();
  const add = (kind: TokenKind, value: string | undefined) => {
    if (value !== undefined && value !== null) tokens.set(`${kind}\u0000${value}`, { kind, value: String(value) });
  };
  add('uid', resourceId);
  if (study.id) add('uid', study.id);
  for (const i of study.identifier ?? []) {
    add('identifier', i.value);
    if (i.system === DICOM_UID_SYSTEM && i.value?.startsWith('urn:oid:')) add('uid', i.value.slice('urn:oid:'.length));
  }
  const patient = subjectIdentifierValue(study);
  const hasIdentifier = !!study.subject?.identifier || /^Patient\?identifier=/.test(study.subject?.reference ?? '');
  if (hasIdentifier) add('patient', patient);
  else add('subject', study.subject?.reference);
  for (const m of study.modality ?? []) add('modality', m.code);
  for (const s of study.series ?? []) {
    add('modality', s.modality?.code);
    add('series', s.uid);
  }
  // The instant only when `started` states its offset: an offset-less time depends on the source's zone,
  // which configuration may change.
  const started = study.started ? parseFhirDateTime(study.started) : undefined;
  return {
    resourceId,
    sourceId,
    startedDay: started?.day ?? null,
    startedMs: (started && statedInstant(started)) ?? null,
    status: study.status ?? null,
    tokens: [...tokens.values()],
  };
}

// ── searching ─────────────────────────────────────────────────────────────

/**
 * Conditions a search can push down, combined with AND. Each `tokens` entry matches a study holding
 * any of its (kind, value) pairs. Day bounds are inclusive YYYYMMDD; instant bounds apply only to
 * studies whose start instant is known (the others stay candidates).
 */
export interface StudyIndexFilter {
  sourceId: string;
  tokens?: { kind: TokenKind; value: string }[][];
  dayFrom?: string;
  dayTo?: string;
  /** Start instant bounds: [from, to) in ms. */
  instant?: { from?: number; to?: number }[];
  /** Each entry an OR-list of statuses. */
  statuses?: string[][];
  /** Bounds on the stored resource's last_updated: [from, to) as ISO instants (UTC, as the store writes them). */
  lastUpdated?: { from?: string; to?: string }[];
}
