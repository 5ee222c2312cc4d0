/**
 * Study UID conflicts, detected: the PACS reports one Study Instance UID under two patients, as two study
 * rows (Orthanc splits a UID shared by two Patient IDs into two studies) or as series/instances whose
 * patient attributes disagree. Pure. The sync quarantines such a study (src/sync/conflicts.ts) and the API
 * leaves it out. Descriptions name the patients only as "patient 1", "patient 2" with their series UIDs
 * (short hashes of Patient IDs would be reversible).
 */
import { Tag, readString, valueOf, type DicomDataset } from '../dicom';
import type { StudyResults } from './types';

export const STUDY_UID_CONFLICT = 'study-uid-conflict';

/** Patient ID and issuer as the row gives them: undefined when the PACS did not return the attribute. */
interface PatientKey {
  id?: string;
  issuer?: string;
}

function attribute(ds: DicomDataset, tag: string): string | undefined {
  if (!(tag in ds)) return undefined;
  return (valueOf(readString(ds, tag)) ?? '').trim();
}

function patientKey(ds: DicomDataset): PatientKey {
  // An empty issuer agrees with any: modalities often leave 0010,0021 out where others fill it in.
  return { id: attribute(ds, Tag.PatientID), issuer: attribute(ds, Tag.IssuerOfPatientID) || undefined };
}

/** Rows disagree when two of them give different values for Patient ID, or for its issuer. */
function disagree(keys: PatientKey[]): boolean {
  const distinct = (f: keyof PatientKey) => new Set(keys.map((k) => k[f]).filter((v) => v !== undefined)).size;
  return distinct('id') > 1 || distinct('issuer') > 1;
}

/** Rows grouped by their patient, in order of first appearance. */
function byPatient<T>(rows: T[], keyOf: (row: T) => PatientKey): { key: PatientKey; rows: T[] }[] {
  const groups = new Map<string, { key: PatientKey; rows: T[] }>();
  for (const row of rows) {
    const key = keyOf(row);
    const k = JSON.stringify([key.id ?? null, key.issuer ?? null]);
    if (!groups.has(k)) groups.set(k, { key, rows: [] });
    groups.get(k)!.rows.push(row);
  }
  return [...groups.values()];
}

/** "patient 2 (empty Patient ID)": what may be said about a patient without naming them. */
function patientLabel(n: number, key: PatientKey): string {
  const notes = [
    key.id === '' ? 'empty Patient ID' : undefined,
    key.id === undefined ? 'no Patient ID returned' : undefined,
  ].filter(Boolean);
  return `patient ${n}${notes.length ? ` (${notes.join(', ')})` : ''}`;
}

function studyUidOf(ds: DicomDataset): string | undefined {
  return valueOf(readString(ds, Tag.StudyInstanceUID))?.trim() || undefined;
}

export interface StudyConflict {
  uid: string;
  /** The first row listed, for the study's date and fingerprint. */
  dataset: DicomDataset;
  detail: string;
}

/**
 * Study-level rows with the conflicting UIDs taken out, and those conflicts. Rows of one UID that agree
 * on the patient (Orthanc also splits "ID " from "ID") are not a conflict and stay.
 */
export function splitStudyConflicts(rows: DicomDataset[]): { rows: DicomDataset[]; conflicts: StudyConflict[] } {
  const byUid = new Map<string, DicomDataset[]>();
  for (const ds of rows) {
    const uid = studyUidOf(ds);
    if (uid) byUid.set(uid, [...(byUid.get(uid) ?? []), ds]);
  }
  const conflicts: StudyConflict[] = [];
  for (const [uid, same] of byUid) {
    if (same.length < 2 || !disagree(same.map(patientKey))) continue;
    const groups = byPatient(same, patientKey).map(
      (g, i) => `${patientLabel(i + 1, g.key)}: ${g.rows.length} study row${g.rows.length === 1 ? '' : 's'}`,
    );
    conflicts.push({
      uid,
      dataset: same[0],
      detail: `${STUDY_UID_CONFLICT}: the PACS lists Study Instance UID ${uid} under ${groups.length} patients (${groups.join('; ')}); not written until the PACS is fixed and the study replayed`,
    });
  }
  const held = new Set(conflicts.map((c) => c.uid));
  return { rows: rows.filter((ds) => !held.has(studyUidOf(ds) ?? '')), conflicts };
}

/**
 * The conflict in a study's series and instances (those that carry patient attributes), if any. Takes the
 * mapper's own shape of them (a source's StudyDetails fits), so mapping needs nothing from src/dicomweb.
 */
export function detailConflict(
  studyUid: string,
  study: DicomDataset,
  details: Pick<StudyResults, 'series' | 'instances'>,
): string | undefined {
  const rows = [study, ...details.series, ...details.instances];
  if (!disagree(rows.map(patientKey))) return undefined;
  const seriesUid = (ds: DicomDataset) => valueOf(readString(ds, Tag.SeriesInstanceUID));
  const groups = byPatient(rows, patientKey).map((g, i) => {
    const series = [...new Set(g.rows.map(seriesUid).filter((u): u is string => !!u))];
    const named = [
      ...(g.rows.includes(study) ? ['the study row'] : []),
      ...(series.length ? [`series ${series.slice(0, 3).join(', ')}${series.length > 3 ? ', …' : ''}`] : []),
    ];
    return `${patientLabel(i + 1, g.key)}: ${named.join(', ')}`;
  });
  return `${STUDY_UID_CONFLICT}: the series and instances of Study Instance UID ${studyUid} belong to ${groups.length} patients (${groups.join('; ')}); not written until the PACS is fixed and the study replayed`;
}
