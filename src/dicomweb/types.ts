/**
 * The source layer's contract: what the rest of the bridge may ask of a PACS. Only src/dicomweb
 * knows how (dicomweb-client, xhr2, auth, retries, paging); everything else sees this.
 */
import type { DicomDataset } from '../dicom';

/** Inclusive StudyDate range, as DICOM DA strings (YYYYMMDD). */
export interface StudyWindow {
  from: string;
  to: string;
}

/** QIDO-RS matching keys by keyword or tag ("ModalitiesInStudy" or "00080061") → value. */
export type QidoMatch = Record<string, string>;

export interface StudyDetails {
  series: DicomDataset[];
  instances: DicomDataset[];
  /** WADO-RS metadata of one of the study's instances, when enrichment asked for it and the PACS gave it. */
  metadata?: DicomDataset;
  /**
   * The levels the PACS still truncated at the finest split (one study; for instances, one series): the
   * rows above are only part of the study's. Such a study must not be written or shown as complete.
   */
  truncated?: Array<'series' | 'instances'>;
}

/** Why a study whose series or instances the PACS will not list in full is not synced (study state `reason`). */
export const TRUNCATED_BY_PACS = 'truncated-by-pacs';

/** A study listing for lookups: the studies found, and the searches the PACS still truncated (empty: complete). */
export interface StudyListing {
  datasets: DicomDataset[];
  truncated: string[];
}

export interface DetailOptions {
  /** Fetch instance rows too (default true). */
  instances?: boolean;
  /** Add one instance's WADO-RS metadata per study (`StudyDetails.metadata`), for enrichment. */
  metadata?: boolean;
  /**
   * Exact Patient ID sent as a matching key on every series/instance query (a patient-restricted
   * search stays inside that patient); a value that cannot be sent exactly throws InexactValueError.
   */
  patientId?: string;
}

export interface SourceStats {
  /** HTTP requests made, by QIDO level or WADO kind. */
  requests: { studies: number; series: number; instances: number; metadata: number; token: number };
  retries: number;
  /** Times a window or batch was split because the server truncated results. */
  splits: number;
  /**
   * Study searches still truncated after narrowing as far as possible (one second of one day): results
   * may be missing there, and each is logged with its scope. A study whose series or instances stay
   * truncated is not counted here: its details say so (`StudyDetails.truncated`).
   */
  unresolved?: number;
}

/** A source's stats before its first request (every PacsSource starts from these). */
export function emptySourceStats(): SourceStats {
  return {
    requests: { studies: 0, series: 0, instances: 0, metadata: 0, token: 0 },
    retries: 0,
    splits: 0,
    unresolved: 0,
  };
}

/** Raised for a PACS failure after retries; `status` is the HTTP status, 0 for network/timeout. */
export class PacsError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly kind: 'network' | 'timeout' | 'auth' | 'http' | 'bad-response',
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'PacsError';
  }
}

/**
 * The PACS (or the way to it) is down: no answer, a timeout, or a gateway error (502–504), after the retries.
 * Not any one study's fault: the sync ends the run and keeps the studies in hand for retry. `instanceof`
 * suffices: a PacsError is always made by this layer (or a test double importing it) in the caller's module
 * registry, never in another realm.
 */
export function isPacsOutage(err: unknown): boolean {
  if (!(err instanceof PacsError)) return false;
  return (
    err.kind === 'network' || err.kind === 'timeout' || err.status === 502 || err.status === 503 || err.status === 504
  );
}

/**
 * A window listing stopped at its `maxStudies` cap: the caller plans smaller windows. `dates` are the
 * StudyDates of the studies seen before it stopped (a lower bound of how they spread over the window).
 */
export class WindowOverflowError extends Error {
  constructor(
    readonly window: StudyWindow,
    readonly seen: number,
    readonly dates: string[],
  ) {
    super(`more than ${seen} studies in StudyDate ${window.from}-${window.to}`);
    this.name = 'WindowOverflowError';
  }
}

export interface PacsSource {
  readonly id: string;
  /** Every study whose StudyDate is in the window, each once, however the server pages or truncates. */
  findStudies(window: StudyWindow, match?: QidoMatch, options?: { maxStudies?: number }): Promise<DicomDataset[]>;
  /**
   * Every study matching `match`, for lookups (identifying values sent exactly): a StudyDate that is one day
   * or a closed range is listed and split as `findStudies` does; any other search is paged whole. With
   * `maxStudies`, passing it stops with a WindowOverflowError.
   */
  listStudies(match: QidoMatch, options?: { maxStudies?: number }): Promise<StudyListing>;
  /** Studies with no valid StudyDate, missing, empty or malformed (found by a separate sweep). */
  findUndatedStudies(match?: QidoMatch): Promise<DicomDataset[]>;
  /** One page of a study search, for on-demand lookups (limit/offset as given). */
  searchStudies(match: QidoMatch, page?: { limit: number; offset: number }): Promise<DicomDataset[]>;
  /**
   * One page of a series-level search (e.g. by SeriesInstanceUID), for on-demand lookups. Each row
   * carries its StudyInstanceUID: study-level queries cannot match on series attributes (Orthanc).
   */
  searchSeries(match: QidoMatch, page?: { limit: number; offset: number }): Promise<DicomDataset[]>;
  /** Series and instances of many studies, batched by UID-list matching where the PACS supports it. */
  studyDetails(studyUids: string[], options?: DetailOptions): Promise<Map<string, StudyDetails>>;
  /** WADO-RS metadata of one study (all instances, full headers). */
  studyMetadata(studyUid: string): Promise<DicomDataset[]>;
  /** Whether the PACS answers UID-list matching (probed once unless configured). */
  supportsUidListMatching(patientId?: string): Promise<boolean>;
  readonly stats: SourceStats;
}
