/**
 * The study searches of a DicomwebSource: StudyDate windows listed in full however the PACS pages or
 * truncates (a truncated scope is narrowed and asked again), lookups' listings, the undated sweep, and
 * the one-page on-demand searches of the lookup API. Series and instances are studyDetails.ts's.
 */
import { parseDate, readString, studyUidOf, Tag, type DicomDataset } from '../dicom';
import { dedupe, endsAtCap, type PageAnswer, type PagedResult } from './paging';
import { QueryContext, rowKeyOfLevel, type ListingBudget } from './queryContext';
import { matchesLocally, planMatch, resolveKey, type PlannedQuery } from './queryEncoding';
import { PacsError, type QidoMatch, type StudyListing, type StudyWindow } from './types';
import { describeScope, scopeParams, splitScope, uidBatches, type Scope } from './windows';

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

/** One study listing: its planned match, its budget, and the scopes the PACS still truncated. */
interface Listing {
  planned: PlannedQuery;
  budget?: ListingBudget;
  unresolved: string[];
}

/** A StudyDate matching value that is one day or a closed range, as a window; else undefined. */
function closedWindow(value: string | undefined): StudyWindow | undefined {
  const m = value === undefined ? null : /^(\d{8})(?:-(\d{8}))?$/.exec(value);
  if (!m) return undefined;
  const w = { from: m[1]!, to: m[2] ?? m[1]! };
  return parseDate(w.from) && parseDate(w.to) && w.from <= w.to ? w : undefined;
}

export class StudySearch {
  /** Whether `StudyDate=""` (Empty Value Matching) has been seen to work on this server. */
  private emptyValueMatching: boolean | undefined;

  /** `uidListMatching`: the source's probe (studyDetails.ts), which the undated sweep's look-up by UID uses too. */
  constructor(
    private readonly ctx: QueryContext,
    private readonly uidListMatching: () => Promise<boolean>,
  ) {}

  /** With `maxStudies`, a listing passing it stops with a WindowOverflowError instead of paging on. */
  async findStudies(
    window: StudyWindow,
    match: QidoMatch = {},
    options: { maxStudies?: number } = {},
  ): Promise<DicomDataset[]> {
    for (const [name, value] of Object.entries(window)) {
      if (!parseDate(value))
        throw new RangeError(`source "${this.ctx.id}": window.${name} "${value}" is not a DICOM date (YYYYMMDD)`);
    }
    if (window.from > window.to)
      throw new RangeError(`source "${this.ctx.id}": window.from ${window.from} is after window.to ${window.to}`);
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
    const caps = this.ctx.caps.studies;
    const limit = Math.max(1, Math.min(5 * this.ctx.cfg.detailPageSize, caps.serverLimit ?? Infinity));
    const kept: DicomDataset[] = [];
    let previousFirst: string | undefined;
    for (let offset = 0; ;) {
      let page: PageAnswer;
      try {
        page = await this.ctx.transport.qido({
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
    const batched = uids.length > 1 && (await this.uidListMatching());
    const chunks = batched ? uidBatches(uids, this.ctx.cfg.pageSize) : uids.map((uid) => [uid]);
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
    const planned = planMatch(match, { ...this.ctx.wire, exactIdentifiers: true });
    const answer = page
      ? await this.ctx.rowIsolating(level, planned.params, { planned })(page.limit, page.offset)
      : await this.ctx.transport.qido({ level, params: [...planned.params, this.ctx.includeField(level, planned)] });
    return answer.datasets.filter((ds) => matchesLocally(ds, planned.filters));
  }

  /** `exact`: a lookup's match, identifying values sent exactly or refused (see queryEncoding). */
  private plan(match: QidoMatch, exact = false): PlannedQuery {
    return planMatch(
      Object.fromEntries(Object.entries(match).filter(([k]) => !WINDOW_KEYS.has(resolveKey(k) as never))),
      exact ? { ...this.ctx.wire, exactIdentifiers: true } : this.ctx.wire,
    );
  }

  private pagedStudies(
    extra: Array<[string, string]>,
    planned: PlannedQuery,
    budget?: ListingBudget,
  ): Promise<PagedResult> {
    return this.ctx.paged('studies', [...extra, ...planned.params], { planned, budget });
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
    this.ctx.stats.splits++;
    const timeless = r.datasets.some((ds) => readString(ds, Tag.StudyTime).kind !== 'value');
    const narrower = await Promise.all(parts.map((p) => this.collect(p, listing, timeless)));
    return [...r.datasets, ...narrower.flat()];
  }

  /** A study search still truncated at its finest split: counted, logged, and named in a lookup's listing. */
  private unresolved(scope: string, listing?: Listing): void {
    this.ctx.stats.unresolved = (this.ctx.stats.unresolved ?? 0) + 1;
    listing?.unresolved.push(scope);
    this.ctx.logger?.warn(
      { source: this.ctx.id, scope },
      'PACS still truncates this search after narrowing it as far as possible; results may be missing',
    );
  }
}
