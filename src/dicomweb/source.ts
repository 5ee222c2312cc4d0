/**
 * A PacsSource over DICOMweb: study searches that survive paging and truncation, the undated
 * sweep, batched series/instance queries with a per-source probe, and WADO-RS metadata.
 * All HTTP goes through transport.ts; query values through queryEncoding.ts.
 */
import type { SourceConfig } from '../config';
import { createAuthorizer } from './auth';
import { parseDate, readString, studyUidOf, valueOf, type DicomDataset, Tag, describeTag } from '../dicom';
import { INSTANCE_INCLUDE_FIELDS, SERIES_INCLUDE_FIELDS, STUDY_INCLUDE_FIELDS } from './includeFields';
import {
  dedupe,
  endsAtCap,
  isolatingBadRows,
  pageThrough,
  type CapMemory,
  type FieldsFetcher,
  type PageAnswer,
  type PageFetcher,
  type PagedResult,
} from './paging';
import {
  exactParam,
  matchesLocally,
  planMatch,
  resolveKey,
  type PlannedQuery,
  type WireOptions,
} from './queryEncoding';
import type { OutboundMetrics } from '../http';
import { pacsRetryPolicy, type PacsRetryTuning } from './retry';
import { createTransport, httpsAgentFor, type QidoLevel, type Transport } from './transport';
import {
  PacsError,
  type DetailOptions,
  type PacsSource,
  type QidoMatch,
  type SourceStats,
  type StudyDetails,
  type StudyListing,
  type StudyWindow,
  WindowOverflowError,
} from './types';
import { describeScope, halves, scopeParams, splitScope, uidBatches, type Scope } from './windows';

/** The part of a pino logger used here; never given patient names, IDs or birth dates. */
export interface SourceLogger {
  warn(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

export interface SourceOptions {
  logger?: SourceLogger;
  /** Backoff tuning; attempts come from the source's `retries`. */
  retry?: PacsRetryTuning;
  /** Records each request's level, status and duration (BridgeMetrics); none: not recorded. */
  metrics?: OutboundMetrics;
  /** Awaited before each HTTP attempt to the PACS, with its kind (metrics; tests). */
  beforeRequest?: (kind: keyof SourceStats['requests']) => void | Promise<void>;
}

const keyOfLevel: Record<QidoLevel, (ds: DicomDataset) => string | undefined> = {
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
const rowKeyOfLevel: Record<QidoLevel, (ds: DicomDataset) => string | undefined> = {
  studies: rowKey(keyOfLevel.studies),
  series: rowKey(keyOfLevel.series),
  instances: rowKey(keyOfLevel.instances),
};
const fieldsOfLevel: Record<QidoLevel, readonly string[]> = {
  studies: STUDY_INCLUDE_FIELDS,
  series: SERIES_INCLUDE_FIELDS,
  instances: INSTANCE_INCLUDE_FIELDS,
};
/** Keys the window itself sets; a caller's match must not narrow them differently. */
const WINDOW_KEYS = new Set([Tag.StudyDate, Tag.StudyTime]);

/**
 * No StudyDate a date range reliably matches: missing, empty, or not a strict DA (YYYYMMDD).
 * The ACR-NEMA "1997.04.24" parses, but servers compare it as text, so ranges miss it.
 */
function isUndated(ds: DicomDataset): boolean {
  const date = readString(ds, Tag.StudyDate);
  return date.kind !== 'value' || !/^\d{8}$/.test(date.value) || parseDate(date.value) === undefined;
}

/** The studies a capped window listing may still return, shared by its pages and narrower scopes. */
interface ListingBudget {
  window: StudyWindow;
  max: number;
  dates: string[];
}

/** One study listing: its planned match, its budget, and the scopes the PACS still truncated. */
interface Listing {
  planned: PlannedQuery;
  budget?: ListingBudget;
  unresolved: string[];
}

/** One level's rows of one study or batch, and whether the PACS left some out. */
type LevelRows = Map<string, { datasets: DicomDataset[]; truncated: boolean }>;

/** A StudyDate matching value that is one day or a closed range, as a window; else undefined. */
function closedWindow(value: string | undefined): StudyWindow | undefined {
  const m = value === undefined ? null : /^(\d{8})(?:-(\d{8}))?$/.exec(value);
  if (!m) return undefined;
  const w = { from: m[1]!, to: m[2] ?? m[1]! };
  return parseDate(w.from) && parseDate(w.to) && w.from <= w.to ? w : undefined;
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

export class DicomwebSource implements PacsSource {
  readonly id: string;
  readonly stats: SourceStats = {
    requests: { studies: 0, series: 0, instances: 0, metadata: 0, token: 0 },
    retries: 0,
    splits: 0,
    unresolved: 0,
  };
  private readonly transport: Transport;
  private readonly wire: WireOptions;
  /** Per level: Orthanc caps study and series searches (LimitFindResults) apart from instance ones. */
  private readonly caps: Record<QidoLevel, CapMemory>;
  private uidListMatching: boolean | undefined;
  /** Whether `StudyDate=""` (Empty Value Matching) has been seen to work on this server. */
  private emptyValueMatching: boolean | undefined;
  private probing: Promise<boolean> | undefined;
  /** Attributes the PACS refused to render for some row, per level: left out first when a row is refused. */
  private readonly refusedFields: Record<QidoLevel, Set<string>> = {
    studies: new Set(),
    series: new Set(),
    instances: new Set(),
  };
  /** Refused attributes already logged as a warning (once per source). */
  private readonly warnedRefusals = new Set<string>();

  constructor(
    private readonly cfg: SourceConfig,
    private readonly options: SourceOptions = {},
  ) {
    this.id = cfg.id;
    const limit = { serverLimit: cfg.serverLimit };
    this.caps = { studies: { ...limit }, series: { ...limit }, instances: { ...limit } };
    this.wire = { percentDecodes: cfg.percentDecodesQueryValues };
    if (cfg.uidListMatching !== 'auto') this.uidListMatching = cfg.uidListMatching === 'on';
    const httpsAgent = httpsAgentFor(cfg);
    const auth = createAuthorizer(cfg.auth, {
      sourceId: cfg.id,
      timeoutMs: cfg.timeoutMs,
      httpsAgent,
      onTokenRequest: () => this.stats.requests.token++,
    });
    this.transport = createTransport(cfg, {
      stats: this.stats,
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

  /** With `maxStudies`, a listing passing it stops with a WindowOverflowError instead of paging on. */
  async findStudies(
    window: StudyWindow,
    match: QidoMatch = {},
    options: { maxStudies?: number } = {},
  ): Promise<DicomDataset[]> {
    for (const [name, value] of Object.entries(window)) {
      if (!parseDate(value))
        throw new RangeError(`source "${this.id}": window.${name} "${value}" is not a DICOM date (YYYYMMDD)`);
    }
    if (window.from > window.to)
      throw new RangeError(`source "${this.id}": window.from ${window.from} is after window.to ${window.to}`);
    const listing = this.listing(this.plan(match), window, options.maxStudies);
    const found = await this.collect({ from: window.from, to: window.to }, listing);
    return dedupe(found, rowKeyOfLevel.studies).filter((ds) => matchesLocally(ds, listing.planned.filters));
  }

  async listStudies(match: QidoMatch, options: { maxStudies?: number } = {}): Promise<StudyListing> {
    // A lookup: identifying values exactly or not at all (see queryEncoding).
    const planned = this.plan(match, true);
    const date = Object.entries(match).find(([k]) => resolveKey(k) === Tag.StudyDate)?.[1];
    const window = closedWindow(date);
    // Without a closed range there is nothing to split: the search is paged whole (`-20240131` included).
    const [from = '', to = ''] = window ? [window.from, window.to] : (date ?? '').split('-');
    const listing = this.listing(planned, { from, to }, options.maxStudies);
    let found: DicomDataset[];
    if (window) found = await this.collect(window, listing);
    else {
      const dateKey: Array<[string, string]> = date === undefined ? [] : planMatch({ StudyDate: date }).params;
      const r = await this.pagedStudies(dateKey, planned, listing.budget);
      if (r.truncated) this.unresolved(`studies ${date ?? '(no StudyDate)'}`, listing);
      found = r.datasets;
    }
    const datasets = dedupe(found, rowKeyOfLevel.studies).filter((ds) => matchesLocally(ds, planned.filters));
    return { datasets, truncated: listing.unresolved };
  }

  private listing(planned: PlannedQuery, window: StudyWindow, maxStudies?: number): Listing {
    const budget = maxStudies === undefined ? undefined : { window, max: maxStudies, dates: [] };
    return { planned, ...(budget ? { budget } : {}), unresolved: [] };
  }

  async findUndatedStudies(match: QidoMatch = {}): Promise<DicomDataset[]> {
    const planned = this.plan(match);
    const keep = (r: PagedResult) =>
      dedupe(r.datasets.filter(isUndated), rowKeyOfLevel.studies).filter((ds) => matchesLocally(ds, planned.filters));
    // Standard first: Empty Value Matching, StudyDate="" (PS3.4 C.2.2.2.1).
    if (this.emptyValueMatching !== false) {
      const emptyDate: Array<[string, string]> = [[Tag.StudyDate, '%22%22']];
      const r = await this.pagedStudies(emptyDate, planned);
      // Once seen to work, an empty answer means there are none.
      if (r.datasets.length === 0 && this.emptyValueMatching) return [];
      if (r.datasets.length > 0) {
        const allUndated = r.datasets.every(isUndated);
        this.emptyValueMatching = allUndated;
        if (allUndated) {
          if (r.truncated) this.unresolved('undated studies (StudyDate="")');
          return keep(r);
        }
      }
    }
    // Orthanc 1.10 matches "" literally (nothing comes back), so scan every study and keep the
    // undated ones. Without a date to narrow by, a capped scan cannot be split.
    const scan = await this.scanStudyDates(planned);
    if (scan.truncated) this.unresolved('undated studies (scan of all studies)');
    const undated = dedupe(scan.datasets, studyUidOf)
      .map(studyUidOf)
      .filter((u): u is string => !!u);
    if (undated.length) this.emptyValueMatching = false; // undated studies exist and "" found none
    return keep(await this.studiesByUid(undated, planned));
  }

  /**
   * The undated rows of a scan of every study: the server's default attributes only (no includefield, so
   * nothing is read from files), in pages of 5 × detailPageSize. Only undated rows are kept as pages go by,
   * so scanning millions of studies holds no more than a page.
   */
  private async scanStudyDates(planned: PlannedQuery): Promise<PagedResult> {
    const caps = this.caps.studies;
    const limit = Math.max(1, Math.min(5 * this.cfg.detailPageSize, caps.serverLimit ?? Infinity));
    const kept: DicomDataset[] = [];
    let previousFirst: string | undefined;
    for (let offset = 0; ;) {
      let page: PageAnswer;
      try {
        page = await this.transport.qido({
          level: 'studies',
          params: [...planned.params, ['limit', String(limit)], ['offset', String(offset)]],
        });
      } catch (e) {
        if (e instanceof PacsError && e.status === 413) return { datasets: kept, truncated: true };
        throw e;
      }
      kept.push(...page.datasets.filter(isUndated));
      const n = page.datasets.length;
      const first = n ? studyUidOf(page.datasets[0]!) : undefined;
      if (page.truncated) return { datasets: kept, truncated: true };
      // The same first study again: the server ignores offset, and what follows the first page is out of reach.
      if (first !== undefined && first === previousFirst) return { datasets: kept, truncated: true };
      // A short page is the last, unless the search ended at the server's cap (see paging.ts).
      if (n < limit) return { datasets: kept, truncated: endsAtCap(caps, offset + n) };
      previousFirst = first;
      offset += n;
    }
  }

  /** The full study-level rows of these studies, by UID list where the PACS supports it. */
  private async studiesByUid(uids: string[], planned: PlannedQuery): Promise<PagedResult> {
    if (!uids.length) return { datasets: [], truncated: false };
    const batched = uids.length > 1 && (await this.supportsUidListMatching());
    const chunks = batched ? uidBatches(uids, this.cfg.pageSize) : uids.map((uid) => [uid]);
    const out: PagedResult = { datasets: [], truncated: false };
    for (const chunk of chunks) {
      const r = await this.pagedStudies([[Tag.StudyInstanceUID, chunk.join(',')]], planned);
      out.datasets.push(...r.datasets);
      if (r.truncated) this.unresolved(`undated studies by UID (${chunk.length})`);
    }
    return out;
  }

  searchStudies(match: QidoMatch, page?: { limit: number; offset: number }): Promise<DicomDataset[]> {
    return this.searchLevel('studies', match, page);
  }

  searchSeries(match: QidoMatch, page?: { limit: number; offset: number }): Promise<DicomDataset[]> {
    // SERIES_INCLUDE_FIELDS asks for StudyInstanceUID, so each row says which study holds it.
    return this.searchLevel('series', match, page);
  }

  /** One page (or the server's first answer) of an on-demand search at one level, narrowed locally. */
  private async searchLevel(
    level: 'studies' | 'series',
    match: QidoMatch,
    page?: { limit: number; offset: number },
  ): Promise<DicomDataset[]> {
    // A lookup: identifying values exactly or not at all (see queryEncoding).
    const planned = planMatch(match, { ...this.wire, exactIdentifiers: true });
    const answer = page
      ? await this.rowIsolating(level, planned.params, undefined, planned)(page.limit, page.offset)
      : await this.transport.qido({ level, params: [...planned.params, this.includeField(level, planned)] });
    return answer.datasets.filter((ds) => matchesLocally(ds, planned.filters));
  }

  async studyDetails(studyUids: string[], options: DetailOptions = {}): Promise<Map<string, StudyDetails>> {
    const uids = [...new Set(studyUids)];
    const details = new Map<string, StudyDetails>(uids.map((uid) => [uid, { series: [], instances: [] }]));
    if (!uids.length) return details;
    const levels: QidoLevel[] = options.instances === false ? ['series'] : ['series', 'instances'];
    // Study-level matching keys are allowed on relational /series and /instances queries (PS3.18).
    const keys = options.patientId === undefined ? [] : [exactParam('PatientID', options.patientId, this.wire)];
    const batched = uids.length > 1 && (await this.supportsUidListMatching(options.patientId));
    const chunks = batched ? uidBatches(uids, this.cfg.detailBatchSize) : uids.map((uid) => [uid]);
    // Settled, not raced: a failure answers only once no query of this call is still going.
    const settled = await Promise.allSettled(
      chunks.flatMap((chunk) =>
        levels.map(async (level) => {
          const byStudy =
            chunk.length > 1
              ? await this.batchLevel(level, chunk, keys)
              : await this.perStudyLevel(level, chunk[0], keys);
          for (const [uid, r] of byStudy) addLevel(details.get(uid)!, level as 'series' | 'instances', r);
        }),
      ),
    );
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (options.metadata) await Promise.all(uids.map((uid) => this.addMetadata(uid, details.get(uid)!, keys)));
    return details;
  }

  /**
   * One instance's WADO-RS metadata for enrichment: an instance already listed, else the first one a QIDO
   * search with limit 1 finds. A PACS that refuses it (HTTP error, bad body) costs the study its enrichment only.
   */
  private async addMetadata(studyUid: string, details: StudyDetails, keys: Array<[string, string]>): Promise<void> {
    const uidsOf = (ds: DicomDataset | undefined) => {
      const series = ds && valueOf(readString(ds, Tag.SeriesInstanceUID));
      const instance = ds && valueOf(readString(ds, Tag.SOPInstanceUID));
      return series && instance ? { study: studyUid, series, instance } : undefined;
    };
    try {
      let uids = details.instances.map(uidsOf).find((u) => u !== undefined);
      if (!uids) {
        const include: [string, string] = ['includefield', `${Tag.SeriesInstanceUID},${Tag.SOPInstanceUID}`];
        const some = await this.transport.qido({
          level: 'instances',
          studyUid,
          params: [...keys, include, ['limit', '1']],
        });
        uids = uidsOf(some.datasets[0]);
      }
      if (!uids) return;
      details.metadata = (await this.transport.instanceMetadata(uids))[0];
    } catch (e) {
      if (!(e instanceof PacsError) || (e.kind !== 'http' && e.kind !== 'bad-response')) throw e;
      this.options.logger?.warn(
        { source: this.id, studyUid, status: e.status },
        'WADO-RS metadata for enrichment failed; the study is mapped from QIDO-RS alone',
      );
    }
  }

  studyMetadata(studyUid: string): Promise<DicomDataset[]> {
    return this.transport.metadata(studyUid);
  }

  /**
   * Probed once: ask for two studies known to exist by UID list; both must come back, alone. A caller
   * working for one patient passes that patient's ID, so the probe reads only that patient's studies.
   */
  supportsUidListMatching(patientId?: string): Promise<boolean> {
    if (this.uidListMatching !== undefined) return Promise.resolve(this.uidListMatching);
    const keys = patientId === undefined ? [] : [exactParam('PatientID', patientId, this.wire)];
    this.probing ??= this.probeUidListMatching(keys).finally(() => (this.probing = undefined));
    return this.probing;
  }

  private async probeUidListMatching(keys: [string, string][]): Promise<boolean> {
    // Default return attributes only: an explicit includefield can make Orthanc read files.
    const some = await this.transport.qido({ level: 'studies', params: [['limit', '2'], ...keys] });
    const known = [...new Set(some.datasets.map(studyUidOf).filter((u): u is string => !!u))].slice(0, 2);
    if (known.length < 2) return false; // nothing to probe with yet; ask again later
    let supported: boolean;
    try {
      const answer = await this.transport.qido({
        level: 'studies',
        params: [[Tag.StudyInstanceUID, known.join(',')], ...keys],
      });
      const back = new Set(answer.datasets.map(studyUidOf));
      supported = back.size === 2 && known.every((u) => back.has(u));
    } catch (e) {
      // A server that rejects the list (400) does not support it; anything else is a real failure.
      if (!(e instanceof PacsError) || e.kind !== 'http') throw e;
      supported = false;
    }
    this.uidListMatching = supported;
    this.options.logger?.debug?.({ source: this.id, uidListMatching: supported }, 'probed UID-list matching');
    return supported;
  }

  /** `exact`: a lookup's match, identifying values sent exactly or refused (see queryEncoding). */
  private plan(match: QidoMatch, exact = false): PlannedQuery {
    return planMatch(
      Object.fromEntries(Object.entries(match).filter(([k]) => !WINDOW_KEYS.has(resolveKey(k) as never))),
      exact ? { ...this.wire, exactIdentifiers: true } : this.wire,
    );
  }

  private includeField(level: QidoLevel, planned?: PlannedQuery): [string, string] {
    return ['includefield', this.fieldsFor(level, planned).join(',')];
  }

  private fieldsFor(level: QidoLevel, planned?: PlannedQuery): string[] {
    // Matching keys are returned anyway by a conformant server; asking makes sure (local filtering needs them).
    return [...new Set([...fieldsOfLevel[level], ...(planned?.params.map(([k]) => k) ?? [])])];
  }

  private pagedStudies(
    extra: Array<[string, string]>,
    planned: PlannedQuery,
    budget?: ListingBudget,
  ): Promise<PagedResult> {
    return this.paged('studies', [...extra, ...planned.params], undefined, planned, budget);
  }

  /**
   * Pages through one QIDO search, isolating rows the server cannot render with the full field list.
   * Series and instance searches return several rows per study, so they page by `detailPageSize`.
   */
  private paged(
    level: QidoLevel,
    match: Array<[string, string]>,
    studyUid?: string,
    planned?: PlannedQuery,
    budget?: ListingBudget,
    seriesUid?: string,
  ): Promise<PagedResult> {
    const pageSize = level === 'studies' ? this.cfg.pageSize : this.cfg.detailPageSize;
    const fetcher = this.rowIsolating(level, match, studyUid, planned, seriesUid);
    return pageThrough(budget ? capped(fetcher, budget) : fetcher, pageSize, this.caps[level], rowKeyOfLevel[level]);
  }

  /** One page of a QIDO search; a page the server refuses is fetched in halves, a row without what it refuses. */
  private rowIsolating(
    level: QidoLevel,
    match: Array<[string, string]>,
    studyUid?: string,
    planned?: PlannedQuery,
    seriesUid?: string,
  ): PageFetcher {
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
    const fields = this.fieldsFor(level, planned);
    return isolatingBadRows(fetch, fields, this.refusedFields[level], (datasets, dropped) =>
      this.reportDropped(level, datasets, dropped, dropped.length === fields.length),
    );
  }

  /** Rows fetched without some (`all`: every one) of the attributes asked for; a refused attribute is warned once. */
  private reportDropped(level: QidoLevel, datasets: DicomDataset[], dropped: readonly string[], all: boolean): void {
    const uids = datasets.map(keyOfLevel[level]);
    if (all) {
      this.options.logger?.warn(
        { source: this.id, qidoLevel: level, uids },
        'PACS cannot render the requested attributes of these results; kept with its default attributes only',
      );
      return;
    }
    for (const tag of dropped.filter((f) => !this.warnedRefusals.has(f))) {
      this.warnedRefusals.add(tag);
      this.options.logger?.warn(
        { source: this.id, qidoLevel: level, attribute: describeTag(tag), uids },
        'PACS refuses this attribute for some results; it is left out for those results only',
      );
    }
    this.options.logger?.debug?.(
      { source: this.id, qidoLevel: level, uids, left: dropped.map(describeTag) },
      'results fetched without the attributes the PACS refused for them',
    );
  }

  /**
   * Every study in the scope: page through it, and if the server truncates, narrow and repeat.
   * `timelessSeen`: the truncated day answer above held studies without a StudyTime.
   */
  private async collect(scope: Scope, listing: Listing, timelessSeen = false): Promise<DicomDataset[]> {
    const wire = planMatch(Object.fromEntries(scopeParams(scope))).params;
    const r = await this.pagedStudies(wire, listing.planned, listing.budget);
    if (scope.emptyTime && r.datasets.length === 0 && timelessSeen) {
      // StudyTime="" matched nothing although such studies exist: no Empty Value Matching here
      // (Orthanc 1.10), and time ranges never match them. Those past the cap cannot be listed.
      this.unresolved(`studies ${describeScope(scope)}: the PACS has no Empty Value Matching`, listing);
    }
    if (!r.truncated) return r.datasets;
    const parts = splitScope(scope);
    if (!parts.length) {
      this.unresolved(`studies ${describeScope(scope)}`, listing);
      return r.datasets;
    }
    this.stats.splits++;
    const timeless = r.datasets.some((ds) => readString(ds, Tag.StudyTime).kind !== 'value');
    const narrower = await Promise.all(parts.map((p) => this.collect(p, listing, timeless)));
    return [...r.datasets, ...narrower.flat()];
  }

  /** Series or instances of several studies in one search (UID-list matching); halves on truncation. */
  private async batchLevel(level: QidoLevel, uids: string[], keys: Array<[string, string]>): Promise<LevelRows> {
    const r = await this.paged(level, [[Tag.StudyInstanceUID, uids.join(',')], ...keys]);
    // Without a Study Instance UID on every answer they cannot be told apart: ask per study.
    const attributable = r.datasets.every((ds) => studyUidOf(ds) !== undefined);
    if (!r.truncated && attributable) {
      const byStudy: LevelRows = new Map(uids.map((u) => [u, { datasets: [], truncated: false }]));
      for (const ds of r.datasets) byStudy.get(studyUidOf(ds)!)?.datasets.push(ds);
      return byStudy;
    }
    if (uids.length === 1 || !attributable) {
      const each = await Promise.all(uids.map((u) => this.perStudyLevel(level, u, keys)));
      return new Map(each.flatMap((m) => [...m]));
    }
    this.stats.splits++;
    const [a, b] = halves(uids);
    const [ma, mb] = await Promise.all([this.batchLevel(level, a, keys), this.batchLevel(level, b, keys)]);
    return new Map([...ma, ...mb]);
  }

  /** One study's series or instances; instances still truncated are asked for series by series. */
  private async perStudyLevel(level: QidoLevel, uid: string, keys: Array<[string, string]>): Promise<LevelRows> {
    let r = await this.paged(level, keys, uid);
    if (r.truncated && level === 'instances') {
      this.stats.splits++;
      r = await this.instancesBySeries(uid, keys, r.datasets);
    }
    if (r.truncated)
      this.options.logger?.warn(
        { source: this.id, studyUid: uid, qidoLevel: level, listed: r.datasets.length },
        "PACS still truncates this study's search after narrowing it as far as possible; the study is incomplete",
      );
    return new Map([[uid, r]]);
  }

  /**
   * A study's instances one series at a time (/studies/{s}/series/{se}/instances), added to those its
   * truncated instance search returned: a PACS capping each search lists a large study this way. Still
   * truncated when a series' search is, or when the study's series cannot all be listed.
   */
  private async instancesBySeries(
    uid: string,
    keys: Array<[string, string]>,
    listed: DicomDataset[],
  ): Promise<PagedResult> {
    const series = await this.paged('series', keys, uid);
    const seriesUids = [...new Set(series.datasets.map(keyOfLevel.series).filter((u): u is string => !!u))];
    const each = await Promise.all(
      seriesUids.map((se) => this.paged('instances', keys, uid, undefined, undefined, se)),
    );
    const datasets = dedupe([...listed, ...each.flatMap((r) => r.datasets)], rowKeyOfLevel.instances);
    return { datasets, truncated: series.truncated || each.some((r) => r.truncated) };
  }

  private unresolved(scope: string, listing?: Listing): void {
    this.stats.unresolved = (this.stats.unresolved ?? 0) + 1;
    listing?.unresolved.push(scope);
    this.options.logger?.warn(
      { source: this.id, scope },
      'PACS still truncates this search after narrowing it as far as possible; results may be missing',
    );
  }
}

/** Adds one level's rows to a study's details, marking the level truncated when the PACS left some out. */
function addLevel(
  d: StudyDetails,
  level: 'series' | 'instances',
  r: { datasets: DicomDataset[]; truncated: boolean },
): void {
  d[level].push(...r.datasets);
  if (r.truncated && !d.truncated?.includes(level)) d.truncated = [...(d.truncated ?? []), level];
}
