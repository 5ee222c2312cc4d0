/**
 * A per-study fingerprint from the study-level QIDO-RS result alone, for change detection: when it is
 * unchanged the sync can skip fetching series and instances. It covers every study-level attribute the
 * mapper reads (its attribute table), the counts and the modalities (order-insensitive), and nothing else (RetrieveURL,
 * InstanceAvailability and the like do not change the resource).
 */
import { rawValues, type DicomDataset, Tag, attributesOf } from '../dicom';
import { canonicalJson, sha256Hex } from './canonical';

// Every study-level attribute in the mapper's table; Modalities in Study is added below, order-insensitive.
const STUDY_TAGS_MAPPED = attributesOf('study').filter((tag) => tag !== Tag.ModalitiesInStudy);

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
  // next listing or sweep re-maps the study. v2: patient systems per issuer, CJK names, the shared attribute table;
  // v3: Patient IDs without an issuer in a system of their source's own.
  return `v3:${sha256Hex(canonicalJson(picked))}`;
}
