/**
 * Resource ids. A DICOM UID (digits and dots, at most 64 characters) is already a valid FHIR id, so
 * it is used as is; anything else gets a deterministic hash-based id so every path agrees.
 */
import { createHash } from 'node:crypto';

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
/** PS3.5 §9.1: components of digits without leading zeros, separated by dots, 64 characters at most. */
const DICOM_UID = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;

export function isFhirId(s: string): boolean {
  return FHIR_ID.test(s);
}

export function isDicomUid(s: string): boolean {
  return s.length <= 64 && DICOM_UID.test(s);
}

function hashId(prefix: string, s: string): string {
  return prefix + createHash('sha256').update(s, 'utf8').digest('hex').slice(0, 40);
}

/** The ImagingStudy id for a Study Instance UID: the UID itself when it is a valid FHIR id. */
export function imagingStudyId(studyUid: string): string {
  const uid = studyUid.trim();
  return isFhirId(uid) ? uid : hashId('uid-', uid);
}

/** The Endpoint id for a source: "pacs-<sourceId>", hashed only if that would exceed 64 characters. */
export function endpointId(sourceId: string): string {
  const id = `pacs-${sourceId}`;
  return isFhirId(id) ? id : hashId('pacs-', sourceId);
}
