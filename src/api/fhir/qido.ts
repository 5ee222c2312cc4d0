/**
 * Search criteria → one QIDO-RS study-level match for one source. The PACS narrows; the result filter
 * (match.ts) is exact. `null` means no study of this source can match, so no request is made.
 */
import type { SourceConfig } from '../../config/schema';
import type { QidoMatch } from '../../dicomweb/types';
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

export function qidoPlanFor(
  criteria: Criterion[],
  source: Pick<SourceConfig, 'defaultTimezone' | 'mapping'>,
): QidoPlan | null {
  const match: QidoMatch = {};
  // AND of two different exact values for one attribute can match no study.
  const put = (key: string, value: string): boolean => {
    if (match[key] !== undefined && match[key] !== value) return false;
    match[key] = value;
    return true;
  };

  const uids = studyUidSet(criteria);
  if (uids && uids.length === 0) return null;
  if (uids) match.StudyInstanceUID = uids.join(',');

  let modalitySet = false;
  for (const c of criteria) {
    switch (c.kind) {
      case 'identifier': {
        const key = c.token.system && c.token.system === source.mapping.studyIdSystem ? 'StudyID' : 'AccessionNumber';
        if (!put(key, c.token.value)) return null;
        break;
      }
      case 'patientId':
        if (!put('PatientID', c.patientId)) return null;
        break;
      case 'patientIdentifier':
        if (!put('PatientID', c.token.value)) return null;
        break;
      case 'modality':
        // The mapper always codes modality in DICOM's system; another (or no) system matches nothing.
        if (c.token.system !== undefined && c.token.system !== DCM_SYSTEM) return null;
        // QIDO has one ModalitiesInStudy value; further modality criteria are checked on the results.
        if (!modalitySet) match.ModalitiesInStudy = c.token.value;
        modalitySet = true;
        break;
      case 'status':
        if (!c.statuses.some((s) => LIVE_STATUSES.includes(s))) return null;
        break;
      default:
        break;
    }
  }

  const dates = criteria.flatMap((c) => (c.kind === 'started' ? [c.value] : []));
  if (dates.length) {
    const range = qidoDateRange(dates, source.defaultTimezone);
    if (!range) return null;
    Object.assign(match, range);
  }
  return { match, uidList: !!uids && uids.length > 1 };
}
