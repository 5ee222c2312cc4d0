/**
 * Where synced resources go. The embedded store and the FHIR-server sink both implement this, and
 * either or both can be enabled; the sync hands each a batch and records what each returns.
 */
import type { Endpoint, ImagingStudy } from 'fhir/r4';
import type { PatientFacts } from '../mapping';

/**
 * What the DICOM data says about the patient, for sinks that link or create Patients (the FHIR-server
 * sink's lookup/create modes). Optional: without it, sinks use ImagingStudy.subject as mapped. Built by
 * src/mapping/patient.ts.
 */
export type { PatientFacts } from '../mapping';

export interface StudyWrite {
  sourceId: string;
  studyUid: string;
  imagingStudy: ImagingStudy;
  endpoint: Endpoint;
  /** The mapper's content hash: equal hashes mean nothing to write. */
  contentHash: string;
  /** Patient facts from the DICOM data, when known (additive; see PatientFacts). */
  patient?: PatientFacts;
  /**
   * The other sources holding this study, whose Endpoints `imagingStudy` references too (src/sync/holdings.ts):
   * a sink stores each Endpoint and points those references at it.
   */
  alsoHeldBy?: { sourceId: string; endpoint: Endpoint }[];
}

/** How a sink linked the study's subject; never carries patient data, so it may be logged. */
export interface PatientLinkNote {
  /** The linking actually applied (differs from the configured mode after a fallback). */
  mode: 'identifier' | 'conditional' | 'lookup' | 'create' | 'as-mapped';
  /** Why the configured mode could not be applied, when it could not. */
  fallbackReason?: string;
}

export type WriteOutcome =
  | {
      studyUid: string;
      ok: true;
      resourceId: string;
      versionId?: string;
      unchanged?: boolean;
      patientLink?: PatientLinkNote;
    }
  | {
      studyUid: string;
      ok: false;
      error: string;
      retryable: boolean;
      /**
       * The sink as a whole could not take the write (server down, 5xx, 429, network, after its own
       * retries): not this study's fault. The sync ends the run as "sink unavailable" and charges nothing.
       */
      unavailable?: boolean;
    };

export interface Sink {
  readonly name: string;
  writeBatch(writes: StudyWrite[]): Promise<WriteOutcome[]>;
  /** Removes or marks a study this bridge created; never touches resources it did not create. */
  removeStudy(sourceId: string, studyUid: string, action: 'entered-in-error' | 'delete'): Promise<void>;
}
