/**
 * The mapper's contract: one study's QIDO-RS results in, an ImagingStudy and the source's Endpoint
 * out (or a typed error). Pure data; no I/O anywhere in src/mapping.
 */
import type { Endpoint, ImagingStudy } from 'fhir/r4';
import type { DicomDataset, ValueProblem } from '../dicom';

/** What QIDO-RS returned for one study at the three levels. */
export interface StudyResults {
  study: DicomDataset;
  series: DicomDataset[];
  instances: DicomDataset[];
  /** One instance's WADO-RS metadata, when the source enriches (fills what the QIDO-RS rows lack). */
  metadata?: DicomDataset;
}

export interface MappingWarning {
  studyUid?: string;
  /** Tag of the attribute concerned, when there is one. */
  tag?: string;
  code: string;
  message: string;
  problem?: ValueProblem;
}

export interface MappingError {
  /** The study concerned, when its UID could be read. */
  studyUid?: string;
  tag: string;
  code:
    | 'missing-study-uid'
    | 'invalid-study-uid'
    | 'series-missing-uid'
    | 'series-invalid-uid'
    | 'series-missing-modality'
    | 'instance-missing-uid'
    | 'instance-invalid-uid'
    | 'instance-missing-sop-class'
    | 'invalid-resource'
    /** A defect in the mapper itself, caught so one study cannot stop a sync. */
    | 'internal-error';
  message: string;
}

export type MapResult =
  | { ok: true; imagingStudy: ImagingStudy; endpoint: Endpoint; contentHash: string; warnings: MappingWarning[] }
  | { ok: false; error: MappingError; warnings: MappingWarning[] };
