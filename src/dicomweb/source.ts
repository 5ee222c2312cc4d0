/**
 * A PacsSource over DICOMweb, the class createPacsSource returns: it builds the source's transport and the
 * context its operations share (queryContext.ts), and hands each call to the module of its operation:
 * study searches (studySearch.ts), series and instances with the UID-list probe (studyDetails.ts), and
 * WADO-RS metadata (metadata.ts). All HTTP goes through transport.ts; query values through queryEncoding.ts.
 */
import type { SourceConfig } from '../config';
import type { DicomDataset } from '../dicom';
import type { OutboundMetrics } from '../http';
import { createAuthorizer } from './auth';
import { studyMetadata } from './metadata';
import { QueryContext, type SourceLogger } from './queryContext';
import { pacsRetryPolicy, type PacsRetryTuning } from './retry';
import { StudyDetailQueries } from './studyDetails';
import { StudySearch } from './studySearch';
import { createTransport, httpsAgentFor, type Transport } from './transport';
import {
  emptySourceStats,
  type DetailOptions,
  type PacsSource,
  type QidoMatch,
  type SourceStats,
  type StudyDetails,
  type StudyListing,
  type StudyWindow,
} from './types';

export interface SourceOptions {
  logger?: SourceLogger;
  /** Backoff tuning; attempts come from the source's `retries`. */
  retry?: PacsRetryTuning;
  /** Records each request's level, status and duration (BridgeMetrics); none: not recorded. */
  metrics?: OutboundMetrics;
  /** Awaited before each HTTP attempt to the PACS, with its kind (metrics; tests). */
  beforeRequest?: (kind: keyof SourceStats['requests']) => void | Promise<void>;
}

export class DicomwebSource implements PacsSource {
  readonly id: string;
  readonly stats: SourceStats = emptySourceStats();
  private readonly ctx: QueryContext;
  private readonly search: StudySearch;
  private readonly details: StudyDetailQueries;

  constructor(cfg: SourceConfig, options: SourceOptions = {}) {
    this.id = cfg.id;
    this.ctx = new QueryContext(cfg, sourceTransport(cfg, options, this.stats), this.stats, options.logger);
    this.details = new StudyDetailQueries(this.ctx);
    // The undated sweep looks studies up by UID list too, so it asks the one probe of this source.
    this.search = new StudySearch(this.ctx, () => this.details.supportsUidListMatching());
  }

  findStudies(window: StudyWindow, match?: QidoMatch, options?: { maxStudies?: number }): Promise<DicomDataset[]> {
    return this.search.findStudies(window, match, options);
  }

  listStudies(match: QidoMatch, options?: { maxStudies?: number }): Promise<StudyListing> {
    return this.search.listStudies(match, options);
  }

  findUndatedStudies(match?: QidoMatch): Promise<DicomDataset[]> {
    return this.search.findUndatedStudies(match);
  }

  searchStudies(match: QidoMatch, page?: { limit: number; offset: number }): Promise<DicomDataset[]> {
    return this.search.searchStudies(match, page);
  }

  searchSeries(match: QidoMatch, page?: { limit: number; offset: number }): Promise<DicomDataset[]> {
    return this.search.searchSeries(match, page);
  }

  studyDetails(studyUids: string[], options?: DetailOptions): Promise<Map<string, StudyDetails>> {
    return this.details.studyDetails(studyUids, options);
  }

  studyMetadata(studyUid: string): Promise<DicomDataset[]> {
    return studyMetadata(this.ctx, studyUid);
  }

  supportsUidListMatching(patientId?: string): Promise<boolean> {
    return this.details.supportsUidListMatching(patientId);
  }
}

/** The source's one HTTP path to its PACS: auth (its token requests counted), retries, metrics, TLS. */
function sourceTransport(cfg: SourceConfig, options: SourceOptions, stats: SourceStats): Transport {
  const httpsAgent = httpsAgentFor(cfg);
  const auth = createAuthorizer(cfg.auth, {
    sourceId: cfg.id,
    timeoutMs: cfg.timeoutMs,
    httpsAgent,
    onTokenRequest: () => stats.requests.token++,
  });
  return createTransport(cfg, {
    stats,
    auth,
    httpsAgent,
    beforeRequest: options.beforeRequest,
    observe: options.metrics?.pacsRequests(cfg.id),
    retry: pacsRetryPolicy(cfg.retries, options.retry),
    onRetry: (e, attempt, delayMs) =>
      options.logger?.debug?.(
        { source: cfg.id, status: e.status, kind: e.kind, attempt, delayMs },
        'retrying PACS request',
      ),
  });
}
