/** FHIR search/conditional URL pieces. */

/** Percent-encodes a search value, leaving ":" and "/" readable (common in systems and OIDs). */
export function queryValue(s: string): string {
  return encodeURIComponent(s).replace(/%3A/gi, ':').replace(/%2F/gi, '/');
}

/** token search value `system|value`, each side encoded (the bar separates them). */
export function tokenParam(system: string, value: string): string {
  return `${queryValue(system)}|${queryValue(value)}`;
}

export const DICOM_UID_SYSTEM = 'urn:dicom:uid';

export function studyIdentifierValue(studyUid: string): string {
  return `urn:oid:${studyUid}`;
}

/** `identifier=urn:dicom:uid|urn:oid:<uid>` — the ImagingStudy's conditional criteria. */
export function studyCriteria(studyUid: string): string {
  return `identifier=${tokenParam(DICOM_UID_SYSTEM, studyIdentifierValue(studyUid))}`;
}
