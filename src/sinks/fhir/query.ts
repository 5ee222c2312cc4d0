/** FHIR search/conditional URL pieces. */

/** Percent-encodes a search value, leaving ":" and "/" readable (common in systems and OIDs). */
export function queryValue(s: string): string {
  return encodeURIComponent(s).replace(/%3A/gi, ':').replace(/%2F/gi, '/');
}

/** FHIR search escaping (R4 search §3.1.1.4.7): `\`, `|`, `,` and `$` inside a value get a backslash. */
export function searchEscape(s: string): string {
  return s.replace(/[\\|,$]/g, (c) => `\\${c}`);
}

/** token search value `system|value`, each side escaped and encoded (the bar separates them). */
export function tokenParam(system: string, value: string): string {
  return `${queryValue(searchEscape(system))}|${queryValue(searchEscape(value))}`;
}

export const DICOM_UID_SYSTEM = 'urn:dicom:uid';

export function studyIdentifierValue(studyUid: string): string {
  return `urn:oid:${studyUid}`;
}

/** `identifier=urn:dicom:uid|urn:oid:<uid>` — the ImagingStudy's conditional criteria. */
export function studyCriteria(studyUid: string): string {
  return `identifier=${tokenParam(DICOM_UID_SYSTEM, studyIdentifierValue(studyUid))}`;
}
