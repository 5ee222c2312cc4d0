/**
 * A per-study fingerprint from the study-level QIDO-RS result alone, for change detection: when it is
 * unchanged the sync can skip fetching series and instances. It covers every study-level attribute the
 * mapper reads, the counts and the modalities (order-insensitive), and nothing else (RetrieveURL,
 * InstanceAvailability and the like do not change the resource).
 */
import { rawValues, type DicomDataset } from '../dicomweb/dicomJson';
import { Tag } from '../dicomweb/tags';
import { canonicalJson, sha256Hex } from './canonical';

const STUDY_TAGS_MAPPED = [
  Tag.StudyInstanceUID,
  Tag.StudyDate,
  Tag.StudyTime,
  Tag.TimezoneOffsetFromUTC,
  Tag.AccessionNumber,
  Tag.IssuerOfAccessionNumberSequence,
  Tag.StudyID,
  Tag.PatientID,
  Tag.IssuerOfPatientID,
  Tag.IssuerOfPatientIDQualifiersSequence,
  Tag.PatientName,
  Tag.ReferringPhysicianName,
  Tag.NameOfPhysiciansReadingStudy,
  Tag.StudyDescription,
  Tag.ProcedureCodeSequence,
  Tag.ReasonForRequestedProcedure,
  Tag.ReasonForRequestedProcedureCodeSequence,
  Tag.InstitutionalDepartmentName,
  Tag.NumberOfStudyRelatedSeries,
  Tag.NumberOfStudyRelatedInstances,
] as const;

export function studyFingerprint(study: DicomDataset): string {
  const picked: Record<string, unknown> = {};
  for (const tag of STUDY_TAGS_MAPPED) {
    const r = rawValues(study, tag);
    if (r.kind === 'value') picked[tag] = r.value;
    else if (r.kind === 'problem') picked[tag] = { problem: r.problem.kind, raw: r.problem.raw };
  }
  const modalities = rawValues(study, Tag.ModalitiesInStudy);
  if (modalities.kind === 'value') {
    picked[Tag.ModalitiesInStudy] = [
      ...new Set(modalities.value.filter((v) => typeof v === 'string').map((v) => (v as string).trim().toUpperCase())),
    ].sort();
  }
  // Versioned so a change in what is covered, or in how it maps, invalidates old fingerprints and the
  // next listing or sweep re-maps the study. v2: patient systems per issuer, CJK names (issue 14).
  return `v2:${sha256Hex(canonicalJson(picked))}`;
}
