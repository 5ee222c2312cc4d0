/**
 * Search criteria → one QIDO-RS study-level match for one source. The PACS narrows; the result filter
 * (match.ts) is exact. `null` means no study of this source can match, so no request is made.
 * Identifying values (Patient ID, accession, Study ID) go out exactly or the search is refused (400):
 * a widened value would ask the PACS for other patients' studies.
 */
import type { SourceConfig } from '../../config';
import { inexactReason, type QidoMatch } from '../../dicomweb';
import { badRequest } from './outcome';
import { qidoDateRange } from './dates';
import { DCM_SYSTEM, type Criterion } from './params';

/** Statuses a live mapping can produce; others match nothing at the PACS. */
const LIVE_STATUSES = ['available', 'registered'];

export interface QidoPlan {
  match: QidoMatch;
  /** Several Study Instance UIDs in one query: needs UID-list matching at the PACS. */
  uidList: boolean;
}

/** Intersection of the study-UID sets of all studyUid criteria (AND of ORs); undefined when none. */
export function studyUidSet(criteria: Criterion[]): string[] | undefined {
  let set: string[] | undefined;
  for (const c of criteria) {
    if (c.kind !== 'studyUid') continue;
    set = set ? set.filter((u) => c.uids.includes(u)) : [...new Set(c.uids)];
  }
  return set;
}

type QidoSource = Pick<SourceConfig, 'defaultTimezone' | 'mapping'> &
  Partial<Pick<SourceConfig, 'id' | 'percentDecodesQueryValues'>>;

export function qidoPlanFor(criteria: Criterion[], source: QidoSource): QidoPlan | null {
  const match: QidoMatch = {};
  const uids = studyUidSet(criteria);
  if (uids && uids.length === 0) return null;
  if (uids) match.StudyInstanceUID = uids.join(',');
  const narrow = narrowing(match, source);
  if (!criteria.every(narrow)) return null;
  const dates = criteria.flatMap((c) => (c.kind === 'started' ? [c.value] : []));
  if (dates.length) {
    const range = qidoDateRange(dates, source.defaultTimezone);
    if (!range) return null;
    Object.assign(match, range);
  }
  return { match, uidList: !!uids && uids.length > 1 };
}

/**
 * Adds one criterion's matching key to `match`; false when no study of this source can match it. Dates and
 * study UIDs are planned apart (qidoPlanFor).
 */
function narrowing(match: QidoMatch, source: QidoSource): (c: Criterion) => boolean {
  const exact = (param: string, value: string): string => {
    const why = inexactReason(value, { percentDecodes: source.percentDecodesQueryValues });
    if (why)
      throw badRequest(
        `Parameter "${param}" cannot be sent exactly to the PACS${source.id ? ` "${source.id}"` : ''}: ${why}.`,
        param,
      );
    return value;
  };
  // AND of two different exact values for one attribute can match no study.
  const put = (key: string, value: string): boolean => {
    if (match[key] !== undefined && match[key] !== value) return false;
    match[key] = value;
    return true;
  };
  return (c) => {
    switch (c.kind) {
      case 'identifier': {
        const key = c.token.system && c.token.system === source.mapping.studyIdSystem ? 'StudyID' : 'AccessionNumber';
        return put(key, exact(c.param, c.token.value));
      }
      case 'patientId':
        return put('PatientID', exact(c.param, c.patientId));
      case 'patientIdentifier':
        return put('PatientID', exact(c.param, c.token.value));
      case 'modality':
        // The mapper always codes modality in DICOM's system; another (or no) system matches nothing.
        // Not sent: Orthanc 1.10 returns nothing past offset 0 with ModalitiesInStudy as a matching key.
        // The study-level filter (studies.ts) decides, before the page is counted.
        return c.token.system === undefined || c.token.system === DCM_SYSTEM;
      case 'status':
        return c.statuses.some((s) => LIVE_STATUSES.includes(s));
      default:
        return true;
    }
  };
}
