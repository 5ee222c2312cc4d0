/**
 * Where ImagingStudy answers come from. `live` asks the PACS (QIDO-RS) and maps with the mapper;
 * `store` reads what sync stored, with an optional live fallback for studies it does not hold. Both
 * run the same result filter, so a study looks the same and matches the same way either way.
 *
 * A live page costs, per source it touches, one study-level query and one batched detail query for
 * the studies not already cached (plus one series-level query per `series` parameter, which turns
 * Series Instance UIDs into the Study Instance UIDs the study-level query then asks for).
 */
import type { Endpoint, ImagingStudy, OperationOutcomeIssue, Resource } from 'fhir/r4';
import type { SourceConfig } from '../../config/schema';
import type { DicomDataset } from '../../dicomweb/dicomJson';
import { readString, valueOf } from '../../dicomweb/dicomJson';
import { Tag } from '../../dicomweb/tags';
import { PacsError, type PacsSource, type QidoMatch } from '../../dicomweb/types';
import { endpointFor, endpointId, mapStudy } from '../../mapping';
import { detailConflict, STUDY_UID_CONFLICT } from '../../mapping/conflicts';
import { silentLogger, type Logger } from '../../log';
import type { ApiConfig } from '../config';
import { AnswerCache } from './cache';
import type { Cursor } from './cursor';
import { matchContextFor, matchesAll } from './match';
import { FhirError } from './outcome';
import type { Criterion } from './params';
import { qidoPlanFor, type QidoPlan } from './qido';
import { storeFilterFor } from './storeFilter';
import type { StudyIndexFilter } from '../../sinks/store/studyIndex';

export interface ApiSource {
  config: SourceConfig;
  pacs: PacsSource;
}

/** What the API needs of the embedded store (src/sinks/store's Store satisfies it). */
export interface StudyStore {
  getResource(resourceType: string, id: string): Resource | undefined;
  /** Candidates from the store's search index, in id order (keyset paging); a superset of the matches. */
  searchImagingStudies(filter: StudyIndexFilter, page: { after?: string; limit: number }): ImagingStudy[];
}

/** Candidate rows read from the store's index per round trip. */
const STORE_BATCH = 500;

export interface FoundStudy {
  sourceId: string;
  resource: ImagingStudy;
  /** The stored version (store-mode reads), for ETag and meta.versionId. */
  versionId?: string;
}

export interface StudyPage {
  studies: FoundStudy[];
  next?: Cursor;
  /** Matches of the whole search, when known (store mode; live mode when every source was listed whole). */
  total?: number;
  /** Studies the mapper could not represent, reported in the Bundle as outcome issues. */
  problems: OperationOutcomeIssue[];
}

/** One source's study-level candidates for a search (see searchLive). */
interface SourceScan {
  /** The criteria for this source, `series` resolved to Study Instance UIDs. */
  criteria: Criterion[];
  /** Absent when no study of this source can match. */
  plan?: QidoPlan;
  /** Listed whole (within `maxCountScan` rows): `candidates` holds every one, in id order. */
  complete: boolean;
  candidates: DicomDataset[];
}

export interface SearchRequest {
  criteria: Criterion[];
  count: number;
  cursor: Cursor;
}

/** Turns a PACS failure into the client's answer: no address, credential or query in it. */
export function pacsFailure(err: unknown, sourceId: string): FhirError {
  if (err instanceof FhirError) return err;
  if (err instanceof PacsError) {
    if (err.kind === 'timeout') return new FhirError(504, 'timeout', `The PACS "${sourceId}" did not answer in time.`);
    if (err.kind === 'auth')
      return new FhirError(502, 'exception', `The PACS "${sourceId}" refused this server's credentials.`);
    return new FhirError(
      502,
      'transient',
      `The PACS "${sourceId}" could not be queried${err.status ? ` (it answered HTTP ${err.status})` : ''}.`,
    );
  }
  return new FhirError(502, 'exception', `The PACS "${sourceId}" could not be queried.`);
}

const uidOf = (ds: DicomDataset): string | undefined => valueOf(readString(ds, Tag.StudyInstanceUID));

const stripStoreMeta = (r: ImagingStudy): ImagingStudy => {
  // The store's version bookkeeping is not part of the mapping: drop it so both modes agree.
  if (!r.meta) return r;
  const { versionId: _v, lastUpdated: _l, ...meta } = r.meta;
  const { meta: _m, ...rest } = r;
  return Object.keys(meta).length ? { ...rest, meta } : rest;
};

const stripInstances = (r: ImagingStudy): ImagingStudy =>
  r.series?.some((s) => s.instance) ? { ...r, series: r.series.map(({ instance: _i, ...s }) => s) } : r;

export interface RenderedSearch {
  /** UTF-8 bytes, so a hit is not encoded again. */
  body: Buffer;
  /** Parameter names for the audit line. */
  params: string[];
  count: number;
  includeEndpoint: boolean;
}

/**
 * What the routers and metrics need of the study lookup: reads, searches and counts in the configured
 * mode (live, or store with its live fallback), the Endpoints, and the caches. Built once (`serve`).
 */
export interface StudyLookup {
  readonly sourceCount: number;
  /** Live search answers as sent, when kept (live mode with the cache on). */
  readonly rendered?: AnswerCache<RenderedSearch>;
  read(studyUid: string): Promise<FoundStudy | null>;
  search(req: SearchRequest): Promise<StudyPage>;
  count(criteria: Criterion[]): Promise<number>;
  endpoints(): Endpoint[];
  endpoint(id: string): Endpoint | undefined;
  endpointOf(sourceId: string): Endpoint | undefined;
  /** The lookup caches by metrics label. */
  caches(): Record<string, AnswerCache<unknown>>;
  close(): void;
}

export interface LookupDeps {
  config: ApiConfig;
  /** Every configured PACS source with its source-layer client. */
  sources: ApiSource[];
  /** The embedded store, needed in store mode. */
  store?: StudyStore;
  logger?: Logger;
}

export function createStudyLookup(deps: LookupDeps): StudyService {
  return new StudyService(deps.config, deps.sources, deps.store, deps.logger ?? silentLogger);
}

export class StudyService implements StudyLookup {
  readonly pages: AnswerCache<StudyPage>;
  readonly reads: AnswerCache<FoundStudy | null>;
  readonly counts: AnswerCache<number>;
  /** Study-level candidate lists of live searches per source (pages and counts of one search share them). */
  private readonly scans: AnswerCache<SourceScan>;
  /** Mapped studies by source, UID and instance flag, shared by searches and reads. */
  readonly studies: AnswerCache<ImagingStudy>;
  /**
   * Live search answers as the HTTP layer sent them (live mode, cache on), so a repeated search skips
   * parsing, paging and serialising. Same lifetime as `pages`.
   */
  readonly rendered?: AnswerCache<RenderedSearch>;
  /** In-flight sharing of detail fetches only (their results live on in `studies`). */
  private readonly detailBatches: AnswerCache<Map<string, ImagingStudy | string>>;
  private readonly searchSources: ApiSource[];

  constructor(
    private readonly cfg: ApiConfig,
    readonly allSources: ApiSource[],
    private readonly store: StudyStore | undefined,
    private readonly log: Logger,
  ) {
    if (cfg.mode === 'store' && !store) throw new Error('api.mode is "store" but no store was given');
    const byId = new Map(allSources.map((s) => [s.config.id, s]));
    const ids = cfg.searchSources ?? allSources.map((s) => s.config.id);
    this.searchSources = ids.map((id) => {
      const s = byId.get(id);
      if (!s) throw new Error(`api.searchSources names "${id}", which is not a configured source`);
      return s;
    });
    const c = cfg.cache;
    this.pages = new AnswerCache({
      enabled: c.enabled,
      ttlSeconds: c.ttlSeconds,
      maxKeys: c.maxKeys,
      dedupe: c.dedupe,
    });
    this.reads = new AnswerCache({
      enabled: c.enabled,
      ttlSeconds: c.ttlSeconds,
      maxKeys: c.maxKeys,
      dedupe: c.dedupe,
    });
    this.counts = new AnswerCache({
      enabled: c.enabled,
      ttlSeconds: c.ttlSeconds,
      maxKeys: c.maxKeys,
      dedupe: c.dedupe,
    });
    this.scans = new AnswerCache({
      enabled: c.enabled,
      ttlSeconds: c.ttlSeconds,
      maxKeys: c.maxKeys,
      dedupe: c.dedupe,
    });
    this.studies = new AnswerCache({
      enabled: c.enabled,
      ttlSeconds: c.studyTtlSeconds,
      maxKeys: c.maxKeys,
      dedupe: c.dedupe,
    });
    this.detailBatches = new AnswerCache({ enabled: false, ttlSeconds: 1, maxKeys: 10, dedupe: c.dedupe });
    // Live mode only: the store changes under a store-mode search.
    if (cfg.mode === 'live' && c.enabled)
      this.rendered = new AnswerCache({ enabled: true, ttlSeconds: c.ttlSeconds, maxKeys: c.maxKeys, dedupe: false });
  }

  /** The lookup caches by metrics label (`api-responses`: repeated searches answered as rendered). */
  caches(): Record<string, AnswerCache<unknown>> {
    return {
      'api-pages': this.pages,
      'api-reads': this.reads,
      'api-studies': this.studies,
      ...(this.rendered ? { 'api-responses': this.rendered } : {}),
    } as Record<string, AnswerCache<unknown>>;
  }

  get sourceCount(): number {
    return this.searchSources.length;
  }

  endpoints(): Endpoint[] {
    return this.allSources.map((s) => endpointFor(s.config));
  }

  endpoint(id: string): Endpoint | undefined {
    const s = this.allSources.find((src) => endpointId(src.config.id) === id);
    return s && endpointFor(s.config);
  }

  endpointOf(sourceId: string): Endpoint | undefined {
    const s = this.allSources.find((src) => src.config.id === sourceId);
    return s && endpointFor(s.config);
  }

  close(): void {
    for (const c of [this.pages, this.reads, this.counts, this.studies, this.scans]) c.close();
    this.rendered?.close();
  }

  // ── read ────────────────────────────────────────────────────────────────

  async read(studyUid: string): Promise<FoundStudy | null> {
    if (this.cfg.mode === 'store') {
      const stored = this.store!.getResource('ImagingStudy', studyUid) as ImagingStudy | undefined;
      if (stored) {
        const versionId = stored.meta?.versionId;
        return {
          sourceId: this.sourceOfStored(stored) ?? '',
          resource: stripStoreMeta(stored),
          ...(versionId ? { versionId } : {}),
        };
      }
      if (!this.cfg.storeFallback) return null;
    }
    return this.reads.getOrLoad(`read|${studyUid}`, () => this.readLive(studyUid));
  }

  private sourceOfStored(r: ImagingStudy): string | undefined {
    const ref = r.endpoint?.[0]?.reference;
    return this.allSources.find((s) => ref === `Endpoint/${endpointId(s.config.id)}`)?.config.id;
  }

  private async readLive(studyUid: string): Promise<FoundStudy | null> {
    for (const src of this.searchSources) {
      let rows: DicomDataset[];
      try {
        rows = await src.pacs.searchStudies({ StudyInstanceUID: studyUid }, { limit: 2, offset: 0 });
      } catch (err) {
        throw this.failed(err, src);
      }
      const row = rows.find((r) => uidOf(r) === studyUid);
      if (!row) continue;
      const mapped = await this.mapPage(src, [row], true);
      if (mapped.problems.length)
        throw new FhirError(
          500,
          'processing',
          mapped.problems[0].diagnostics ?? 'The study cannot be represented as an ImagingStudy.',
        );
      const resource = mapped.resources[0];
      return resource ? { sourceId: src.config.id, resource } : null;
    }
    return null;
  }

  // ── search ──────────────────────────────────────────────────────────────

  async search(req: SearchRequest): Promise<StudyPage> {
    const key = `search|${this.cfg.mode}|${JSON.stringify(req)}`;
    if (this.cfg.mode === 'store') {
      const page = this.searchStore(req);
      // Fallback for studies not synced yet: a lookup of particular studies the store has none of goes live.
      if (page.studies.length || !this.fallsBack(req.criteria))
        return { ...page, total: this.storeCount(req.criteria) };
    }
    return this.pages.getOrLoad(key, () => this.searchLive(req));
  }

  async count(criteria: Criterion[]): Promise<number> {
    if (this.cfg.mode === 'store') {
      const n = this.storeCount(criteria);
      if (n || !this.fallsBack(criteria)) return n;
    }
    return this.counts.getOrLoad(`count|${JSON.stringify(criteria)}`, () => this.countLive(criteria));
  }

  private storeCount(criteria: Criterion[]): number {
    return this.searchSources.reduce((sum, src) => sum + this.storeMatches(src, criteria).length, 0);
  }

  /** Store mode asks the PACS only for named studies (by UID) that the store does not hold. */
  private fallsBack(criteria: Criterion[]): boolean {
    return this.cfg.storeFallback && criteria.some((c) => c.kind === 'studyUid');
  }

  /**
   * Matches of one source in id order, read from the store's search index in batches: the index
   * narrows, the matcher decides (as in live mode). Stops once `stopAfter` matches are found.
   */
  private storeMatches(src: ApiSource, criteria: Criterion[], stopAfter = Infinity): ImagingStudy[] {
    const ctx = matchContextFor(src.config);
    const filter = storeFilterFor(criteria, src.config.id, ctx.zone);
    const out: ImagingStudy[] = [];
    if (!filter) return out;
    for (let after: string | undefined; out.length < stopAfter;) {
      const batch = this.store!.searchImagingStudies(filter, { after, limit: STORE_BATCH });
      for (const stored of batch) {
        const r = stripStoreMeta(stored);
        if (matchesAll(r, criteria, ctx)) out.push(this.cfg.searchInstances ? r : stripInstances(r));
        if (out.length >= stopAfter) break;
      }
      if (batch.length < STORE_BATCH) break;
      after = batch[batch.length - 1].id;
    }
    return out;
  }

  private searchStore(req: SearchRequest): StudyPage {
    const studies: FoundStudy[] = [];
    const lengths = req.cursor.lengths.slice();
    for (let i = req.cursor.source; i < this.searchSources.length; i++) {
      const src = this.searchSources[i];
      const offset = i === req.cursor.source ? req.cursor.offset : 0;
      const need = req.count - studies.length;
      // One match beyond the page tells whether another follows; fewer means the source's full length.
      const all = this.storeMatches(src, req.criteria, offset + need + 1);
      studies.push(...all.slice(offset, offset + need).map((resource) => ({ sourceId: src.config.id, resource })));
      if (all.length > offset + need)
        return { studies, next: { source: i, offset: offset + need, lengths }, problems: [] };
      lengths.push(all.length);
      if (studies.length >= req.count && i + 1 < this.searchSources.length)
        return { studies, next: { source: i + 1, offset: 0, lengths }, problems: [] };
    }
    return { studies, problems: [] };
  }

  /**
   * The criteria for one source, with `series` resolved to the studies holding those series: one
   * series-level query per criterion (UID-list matching), or one per UID where the PACS lacks it.
   */
  private async criteriaFor(src: ApiSource, criteria: Criterion[]): Promise<Criterion[]> {
    const series = criteria.filter((c): c is Extract<Criterion, { kind: 'series' }> => c.kind === 'series');
    if (!series.length) return criteria;
    const extra: Criterion[] = [];
    for (const c of series) {
      const groups = c.uids.length > 1 && !(await this.uidListSupported(src)) ? c.uids.map((u) => [u]) : [c.uids];
      let rows: DicomDataset[];
      try {
        // A series belongs to one study; twice the UIDs leaves room for a PACS holding duplicates.
        const answers = await Promise.all(
          groups.map((g) =>
            src.pacs.searchSeries({ SeriesInstanceUID: g.join(',') }, { limit: g.length * 2, offset: 0 }),
          ),
        );
        rows = answers.flat();
      } catch (err) {
        throw this.failed(err, src);
      }
      const uids = [...new Set(rows.map((r) => uidOf(r)).filter((u): u is string => !!u))];
      extra.push({ param: 'series', kind: 'studyUid', uids });
    }
    return [...criteria, ...extra];
  }

  /**
   * A live page. Each source's matches are listed first from study-level rows alone (cheap: no series),
   * so filtering on what the PACS is not asked (modality, exact case, systems) happens before the page
   * is counted; then only the page's studies are fetched in detail. A source whose candidates fit in
   * `maxCountScan` rows is listed whole, in id order (as store mode orders), which makes `total` and
   * the `next` link exact; a larger one is read in PACS order from a row position, and `next` then
   * means more may exist.
   */
  private async searchLive(req: SearchRequest): Promise<StudyPage> {
    const scans = await this.scanAll(req.criteria);
    const page: StudyPage = { studies: [], problems: [] };
    if (scans.every((s) => s.complete)) page.total = scans.reduce((n, s) => n + s.candidates.length, 0);
    const lengths = req.cursor.lengths.slice();
    for (let i = req.cursor.source; i < scans.length; i++) {
      const scan = scans[i];
      if (!scan.plan) {
        lengths.push(0);
        continue;
      }
      const src = this.searchSources[i];
      const offset = i === req.cursor.source ? req.cursor.offset : 0;
      const need = req.count - page.studies.length;
      const taken = scan.complete
        ? this.fromList(scan.candidates, offset, need)
        : await this.fromPacs(src, scan.plan.match, scan.criteria, offset, need);
      await this.addMatches(page, src, scan.criteria, taken.rows);
      if (taken.next !== undefined) {
        page.next = { source: i, offset: taken.next, lengths };
        return page;
      }
      lengths.push(taken.end);
    }
    return page;
  }

  /** Up to `need` candidates of a complete list from `offset`; `next` when more remain. */
  private fromList(list: DicomDataset[], offset: number, need: number) {
    const rows = list.slice(offset, offset + need);
    const after = offset + rows.length;
    return { rows, next: after < list.length ? after : undefined, end: list.length };
  }

  /**
   * Up to `need` candidates read from the PACS from row `offset`, one more to know whether another
   * follows; at most `maxCountScan` rows per page, after which `next` resumes where reading stopped.
   */
  private async fromPacs(src: ApiSource, match: QidoMatch, criteria: Criterion[], offset: number, need: number) {
    const found: { row: DicomDataset; at: number }[] = [];
    const size = src.config.pageSize;
    let at = offset;
    for (;;) {
      if (at - offset >= this.cfg.maxCountScan) break;
      const rows = await this.pacsPage(src, match, size, at);
      for (const [k, row] of rows.entries()) {
        if (!this.studyLevelMatch(src, row, criteria)) continue;
        found.push({ row, at: at + k });
        if (found.length > need) return { rows: found.slice(0, need).map((f) => f.row), next: found[need].at, end: 0 };
      }
      at += rows.length;
      if (rows.length < size) return { rows: found.map((f) => f.row), next: undefined, end: at };
    }
    return { rows: found.map((f) => f.row), next: at, end: 0 };
  }

  /** Maps a page's candidates with their series and keeps the exact matches (series criteria included). */
  private async addMatches(page: StudyPage, src: ApiSource, criteria: Criterion[], rows: DicomDataset[]) {
    if (!rows.length) return;
    const mapped = await this.mapPage(src, rows, this.cfg.searchInstances);
    page.problems.push(...mapped.problems);
    const ctx = matchContextFor(src.config);
    for (const resource of mapped.resources)
      if (matchesAll(resource, criteria, ctx)) page.studies.push({ sourceId: src.config.id, resource });
  }

  private async pacsPage(src: ApiSource, match: QidoMatch, limit: number, offset: number): Promise<DicomDataset[]> {
    try {
      return await src.pacs.searchStudies(match, { limit, offset });
    } catch (err) {
      throw this.failed(err, src);
    }
  }

  /**
   * Whether a study-level row can match: mapped without its series, so series-level criteria pass
   * (match.ts). A row the mapper refuses stays a candidate, to be reported as a problem with its page.
   */
  private studyLevelMatch(src: ApiSource, row: DicomDataset, criteria: Criterion[]): boolean {
    const r = mapStudy({ study: row, series: [], instances: [] }, src.config);
    return !r.ok || matchesAll(r.imagingStudy, criteria, { ...matchContextFor(src.config), studyLevelOnly: true });
  }

  /** Every search source's scan, in order; a study already listed by an earlier source is left out. */
  private async scanAll(criteria: Criterion[]): Promise<SourceScan[]> {
    const scans: SourceScan[] = [];
    const seen = new Set<string>();
    for (const src of this.searchSources) {
      const scan = await this.scans.getOrLoad(`scan|${src.config.id}|${JSON.stringify(criteria)}`, () =>
        this.scanSource(src, criteria),
      );
      if (!scan.complete) {
        scans.push(scan);
        continue;
      }
      const own = scan.candidates.filter((row) => !seen.has(uidOf(row) ?? ''));
      for (const row of own) seen.add(uidOf(row) ?? '');
      scans.push({ ...scan, candidates: own });
    }
    return scans;
  }

  /** One source's candidates in id order, when they fit in `maxCountScan` rows. */
  private async scanSource(src: ApiSource, all: Criterion[]): Promise<SourceScan> {
    const criteria = await this.criteriaFor(src, all);
    const plan = qidoPlanFor(criteria, src.config);
    if (!plan) return { criteria, complete: true, candidates: [] };
    if (plan.uidList && !(await this.uidListSupported(src))) {
      throw new FhirError(
        400,
        'not-supported',
        `The PACS "${src.config.id}" cannot look up several Study Instance UIDs in one query; ask for one id at a time.`,
      );
    }
    const size = src.config.pageSize;
    const byUid = new Map<string, DicomDataset>();
    for (let offset = 0; ; offset += size) {
      if (offset >= this.cfg.maxCountScan) return { criteria, plan, complete: false, candidates: [] };
      const rows = await this.pacsPage(src, plan.match, size, offset);
      for (const row of rows) {
        const uid = uidOf(row);
        // Rows without a UID cannot be ordered or read; mapPage reports them when read in PACS order.
        if (uid && !byUid.has(uid) && this.studyLevelMatch(src, row, criteria)) byUid.set(uid, row);
      }
      if (rows.length < size) break;
    }
    const candidates = [...byUid.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, row]) => row);
    return { criteria, plan, complete: true, candidates };
  }

  private async countLive(criteria: Criterion[]): Promise<number> {
    const scans = await this.scanAll(criteria);
    if (scans.some((s) => !s.complete))
      throw new FhirError(
        400,
        'too-costly',
        `More than ${this.cfg.maxCountScan} studies would have to be counted; narrow the search.`,
      );
    return scans.reduce((n, s) => n + s.candidates.length, 0);
  }

  private async uidListSupported(src: ApiSource): Promise<boolean> {
    try {
      return await src.pacs.supportsUidListMatching();
    } catch (err) {
      throw this.failed(err, src);
    }
  }

  /**
   * Maps study rows with their series (and instances): cached studies are reused, the rest fetched
   * in one batched detail call. Results keep the rows' order.
   */
  private async mapPage(
    src: ApiSource,
    rows: DicomDataset[],
    instances: boolean,
  ): Promise<{ resources: ImagingStudy[]; problems: OperationOutcomeIssue[] }> {
    const keyOf = (uid: string) => `study|${src.config.id}|${uid}|${instances ? 'i' : 's'}`;
    const problems: OperationOutcomeIssue[] = [];
    const entries = rows.map((row) => ({ row, uid: uidOf(row) }));
    if (entries.some((e) => !e.uid))
      problems.push({
        severity: 'warning',
        code: 'processing',
        diagnostics: 'The PACS returned a study without a Study Instance UID; it is left out.',
      });
    const found = new Map<string, ImagingStudy>();
    const missing: { row: DicomDataset; uid: string }[] = [];
    for (const e of entries) {
      if (!e.uid) continue;
      const cached = this.studies.get(keyOf(e.uid));
      if (cached) found.set(e.uid, cached);
      else missing.push({ row: e.row, uid: e.uid });
    }
    if (missing.length) {
      const uids = missing.map((m) => m.uid);
      // Identical concurrent pages share one detail fetch.
      const mapped = await this.detailBatches.getOrLoad(
        `details|${src.config.id}|${instances}|${uids.join(',')}`,
        async () => {
          let details;
          try {
            details = await src.pacs.studyDetails(uids, { instances });
          } catch (err) {
            throw this.failed(err, src);
          }
          const out = new Map<string, ImagingStudy | string>();
          for (const m of missing) {
            const d = details.get(m.uid) ?? { series: [], instances: [] };
            // A Study UID under two patients is never shown as one patient's study (the sync quarantines it).
            const conflict = detailConflict(m.uid, m.row, d);
            if (conflict) {
              this.log.warn({ sourceId: src.config.id, studyUid: m.uid, code: STUDY_UID_CONFLICT }, 'study left out');
              out.set(m.uid, conflict);
              continue;
            }
            const result = mapStudy({ study: m.row, series: d.series, instances: d.instances }, src.config);
            if (result.ok) out.set(m.uid, result.imagingStudy);
            else {
              this.log.warn(
                { sourceId: src.config.id, studyUid: m.uid, code: result.error.code },
                'study cannot be mapped',
              );
              out.set(m.uid, result.error.message);
            }
          }
          return out;
        },
      );
      for (const m of missing) {
        const r = mapped.get(m.uid);
        if (typeof r === 'object') {
          found.set(m.uid, r);
          this.studies.set(keyOf(m.uid), r);
        } else
          problems.push({ severity: 'warning', code: 'processing', diagnostics: r ?? `Study ${m.uid}: no result` });
      }
    }
    const resources = entries.flatMap((e) => (e.uid && found.has(e.uid) ? [found.get(e.uid)!] : []));
    return { resources, problems };
  }

  private failed(err: unknown, src: ApiSource): FhirError {
    const f = pacsFailure(err, src.config.id);
    if (!(err instanceof FhirError)) {
      const e = err as Partial<PacsError>;
      this.log.warn({ sourceId: src.config.id, kind: e.kind, status: e.status }, 'PACS query failed');
    }
    return f;
  }
}
