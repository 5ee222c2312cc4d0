/**
 * What the operations of one DicomwebSource share (study search, study details, WADO-RS metadata): its
 * transport and settings, its memory of the PACS (each level's cap, the attributes it refused), its stats
 * and logger, and the two ways every QIDO search runs: one page that isolates the rows the PACS cannot
 * render, and paging through a whole search. One per source, so what is learnt about a PACS is learnt once
 * and every operation sees it.
 */
import type { SourceConfig } from '../config';
import { describeTag, readString, studyUidOf, Tag, valueOf, type DicomDataset } from '../dicom';
import { INSTANCE_INCLUDE_FIELDS, SERIES_INCLUDE_FIELDS, STUDY_INCLUDE_FIELDS } from './includeFields';
import {
  isolatingBadRows,
  pageThrough,
  type CapMemory,
  type FieldsFetcher,
  type PageFetcher,
  type PagedResult,
} from './paging';
import type { PlannedQuery, WireOptions } from './queryEncoding';
import type { QidoLevel, Transport } from './transport';
import { WindowOverflowError, type SourceStats, type StudyWindow } from './types';

/** The part of a pino logger used here; never given patient names, IDs or birth dates. */
export interface SourceLogger {
  warn(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

export const keyOfLevel: Record<QidoLevel, (ds: DicomDataset) => string | undefined> = {
  studies: studyUidOf,
  series: (ds) => valueOf(readString(ds, Tag.SeriesInstanceUID)),
  instances: (ds) => valueOf(readString(ds, Tag.SOPInstanceUID)),
};
/**
 * Row identity for de-duplication: the level's UID plus the patient it is under, so one UID listed under
 * two patients stays two rows and the sync can quarantine it (src/sync/conflicts.ts). Never logged.
 */
const rowKey =
  (uidOf: (ds: DicomDataset) => string | undefined) =>
  (ds: DicomDataset): string | undefined => {
    const uid = uidOf(ds);
    const patient = [Tag.PatientID, Tag.IssuerOfPatientID].map((t) => valueOf(readString(ds, t))?.trim() ?? '');
    return uid === undefined ? undefined : [uid, ...patient].join('\u0000');
  };
export const rowKeyOfLevel: Record<QidoLevel, (ds: DicomDataset) => string | undefined> = {
  studies: rowKey(keyOfLevel.studies),
  series: rowKey(keyOfLevel.series),
  instances: rowKey(keyOfLevel.instances),
};
const fieldsOfLevel: Record<QidoLevel, readonly string[]> = {
  studies: STUDY_INCLUDE_FIELDS,
  series: SERIES_INCLUDE_FIELDS,
  instances: INSTANCE_INCLUDE_FIELDS,
};

/** The studies a capped window listing may still return, shared by its pages and narrower scopes. */
export interface ListingBudget {
  window: StudyWindow;
  max: number;
  dates: string[];
}

/** Where one QIDO search runs and what it is for: all optional, a study-wide search by default. */
export interface SearchScope {
  studyUid?: string;
  seriesUid?: string;
  /** The planned match, whose keys are asked for too (local filtering needs them). */
  planned?: PlannedQuery;
  /** A capped listing's budget: past it, the search stops with a WindowOverflowError. */
  budget?: ListingBudget;
}

/** Counts the rows of each page against the budget; past it, the listing stops with a WindowOverflowError. */
function capped(fetch: PageFetcher, budget: ListingBudget): PageFetcher {
  return async (limit, offset) => {
    const page = await fetch(limit, offset);
    for (const ds of page.datasets) budget.dates.push(valueOf(readString(ds, Tag.StudyDate)) ?? '');
    if (budget.dates.length > budget.max)
      throw new WindowOverflowError(budget.window, budget.dates.length, budget.dates);
    return page;
  };
}

export class QueryContext {
  readonly id: string;
  readonly wire: WireOptions;
  /** Per level: Orthanc caps study and series searches (LimitFindResults) apart from instance ones. */
  readonly caps: Record<QidoLevel, CapMemory>;
  /** Attributes the PACS refused to render for some row, per level: left out first when a row is refused. */
  private readonly refusedFields: Record<QidoLevel, Set<string>> = {
    studies: new Set(),
    series: new Set(),
    instances: new Set(),
  };
  /** Refused attributes already logged as a warning (once per source). */
  private readonly warnedRefusals = new Set<string>();

  constructor(
    readonly cfg: SourceConfig,
    readonly transport: Transport,
    readonly stats: SourceStats,
    readonly logger?: SourceLogger,
  ) {
    this.id = cfg.id;
    const limit = { serverLimit: cfg.serverLimit };
    this.caps = { studies: { ...limit }, series: { ...limit }, instances: { ...limit } };
    this.wire = { percentDecodes: cfg.percentDecodesQueryValues };
  }

  includeField(level: QidoLevel, planned?: PlannedQuery): [string, string] {
    return ['includefield', this.fieldsFor(level, planned).join(',')];
  }

  private fieldsFor(level: QidoLevel, planned?: PlannedQuery): string[] {
    // Matching keys are returned anyway by a conformant server; asking makes sure (local filtering needs them).
    return [...new Set([...fieldsOfLevel[level], ...(planned?.params.map(([k]) => k) ?? [])])];
  }

  /**
   * Pages through one QIDO search, isolating rows the server cannot render with the full field list.
   * Series and instance searches return several rows per study, so they page by `detailPageSize`.
   */
  paged(level: QidoLevel, match: Array<[string, string]>, scope: SearchScope = {}): Promise<PagedResult> {
    const pageSize = level === 'studies' ? this.cfg.pageSize : this.cfg.detailPageSize;
    const fetcher = this.rowIsolating(level, match, scope);
    const { budget } = scope;
    return pageThrough(budget ? capped(fetcher, budget) : fetcher, pageSize, this.caps[level], rowKeyOfLevel[level]);
  }

  /** One page of a QIDO search; a page the server refuses is fetched in halves, a row without what it refuses. */
  rowIsolating(level: QidoLevel, match: Array<[string, string]>, scope: SearchScope = {}): PageFetcher {
    const { studyUid, seriesUid } = scope;
    const fetch: FieldsFetcher = (limit, offset, include) =>
      this.transport.qido({
        level,
        studyUid,
        ...(seriesUid ? { seriesUid } : {}),
        params: [
          ...match,
          ...(include.length ? [['includefield', include.join(',')] as [string, string]] : []),
          ['limit', String(limit)],
          ['offset', String(offset)],
        ],
      });
    const fields = this.fieldsFor(level, scope.planned);
    return isolatingBadRows(fetch, fields, this.refusedFields[level], (datasets, dropped) =>
      this.reportDropped(level, datasets, dropped, dropped.length === fields.length),
    );
  }

  /** Rows fetched without some (`all`: every one) of the attributes asked for; a refused attribute is warned once. */
  private reportDropped(level: QidoLevel, datasets: DicomDataset[], dropped: readonly string[], all: boolean): void {
    const uids = datasets.map(keyOfLevel[level]);
    if (all) {
      this.logger?.warn(
        { source: this.id, qidoLevel: level, uids },
        'PACS cannot render the requested attributes of these results; kept with its default attributes only',
      );
      return;
    }
    for (const tag of dropped.filter((f) => !this.warnedRefusals.has(f))) {
      this.warnedRefusals.add(tag);
      this.logger?.warn(
        { source: this.id, qidoLevel: level, attribute: describeTag(tag), uids },
        'PACS refuses this attribute for some results; it is left out for those results only',
      );
    }
    this.logger?.debug?.(
      { source: this.id, qidoLevel: level, uids, left: dropped.map(describeTag) },
      'results fetched without the attributes the PACS refused for them',
    );
  }
}
