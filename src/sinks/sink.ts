/**
 * Where synced resources go. The embedded store and the FHIR-server sink both implement this, and
 * either or both can be enabled; the sync hands each a batch and records what each returns.
 */
import type { Endpoint, ImagingStudy } from 'fhir/r4';

export interface StudyWrite {
  sourceId: string;
  studyUid: string;
  imagingStudy: ImagingStudy;
  endpoint: Endpoint;
  /** The mapper's content hash: equal hashes mean nothing to write. */
  contentHash: string;
}

export type WriteOutcome =
  | { studyUid: string; ok: true; resourceId: string; versionId?: string; unchanged?: boolean }
  | { studyUid: string; ok: false; error: string; retryable: boolean };

export interface Sink {
  readonly name: string;
  writeBatch(writes: StudyWrite[]): Promise<WriteOutcome[]>;
  /** Removes or marks a study this bridge created; never touches resources it did not create. */
  removeStudy(sourceId: string, studyUid: string, action: 'entered-in-error' | 'delete'): Promise<void>;
}
