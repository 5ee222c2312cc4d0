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
import { PacsError, type PacsSource } from '../../dicomweb/types';
import { endpointFor, endpointId, mapStudy } from '../../mapping';
import { detailConflict, STUDY_UID_CONFLICT } from '../../mapping/conflicts';
import type { Logger } from '../../log';
import type { ApiConfig } from '../config';
import { AnswerCache } from './cache';
import type { Cursor } from './cursor';
import { matchContextFor, matchesAll } from './match';
import { FhirError } from './outcome';
import type { Criterion } from './params';
import { qidoPlanFor } from './qido';
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
}

export interface StudyPage {
  studies: FoundStudy[];
  next?: Cursor;
  /** Studies the mapper could not represent, reported in the Bundle as outcome issues. */
  problems: OperationOutcomeIssue[];
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

export class StudyService {
  readonly pages: AnswerCache<StudyPage>;
  readonly reads: AnswerCache<FoundStudy | null>;
  readonly counts: AnswerCache<number>;
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
    for (const c of [this.pages, this.reads, this.counts, this.studies]) c.close();
    this.rendered?.close();
  }

  // ── read ────────────────────────────────────────────────────────────────

  async read(studyUid: string): Promise<FoundStudy | null> {
    if (this.cfg.mode === 'store') {
      const stored = this.store!.getResource('ImagingStudy', studyUid) as ImagingStudy | undefined;
      if (stored) return { sourceId: this.sourceOfStored(stored) ?? '', resource: stripStoreMeta(stored) };
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
      if (page.studies.length || !this.fallsBack(req.criteria)) return page;
    }
    return this.pages.getOrLoad(key, () => this.searchLive(req));
  }

  async count(criteria: Criterion[]): Promise<number> {
    if (this.cfg.mode === 'store') {
      const n = this.searchSources.reduce((sum, src) => sum + this.storeMatches(src, criteria).length, 0);
      if (n || !this.fallsBack(criteria)) return n;
    }
    return this.counts.getOrLoad(`count|${JSON.stringify(criteria)}`, () => this.countLive(criteria));
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

  private async searchLive(req: SearchRequest): Promise<StudyPage> {
    const page: StudyPage = { studies: [], problems: [] };
    const seen = new Set<string>();
    const lengths = req.cursor.lengths.slice();
    let taken = 0; // QIDO rows consumed for this page (results may be fewer after filtering)
    for (let i = req.cursor.source; i < this.searchSources.length; i++) {
      const src = this.searchSources[i];
      const offset = i === req.cursor.source ? req.cursor.offset : 0;
      const criteria = await this.criteriaFor(src, req.criteria);
      const plan = qidoPlanFor(criteria, src.config);
      if (!plan) {
        lengths.push(0);
        continue;
      }
      if (plan.uidList && !(await this.uidListSupported(src))) {
        throw new FhirError(
          400,
          'not-supported',
          `The PACS "${src.config.id}" cannot look up several Study Instance UIDs in one query; ask for one id at a time.`,
        );
      }
      const need = req.count - taken;
      // One more than needed tells whether another page follows, without a count query.
      const limit = need + 1;
      let rows: DicomDataset[];
      try {
        rows = await src.pacs.searchStudies(plan.match, { limit, offset });
      } catch (err) {
        throw this.failed(err, src);
      }
      const pageRows = rows.slice(0, need);
      taken += pageRows.length;
      const mapped = await this.mapPage(src, pageRows, this.cfg.searchInstances);
      page.problems.push(...mapped.problems);
      const ctx = matchContextFor(src.config);
      for (const resource of mapped.resources) {
        if (seen.has(resource.id!) || !matchesAll(resource, criteria, ctx)) continue;
        seen.add(resource.id!);
        page.studies.push({ sourceId: src.config.id, resource });
      }
      if (rows.length > need) {
        page.next = { source: i, offset: offset + need, lengths };
        return page;
      }
      lengths.push(offset + rows.length);
      if (taken >= req.count) {
        if (i + 1 < this.searchSources.length) page.next = { source: i + 1, offset: 0, lengths };
        return page;
      }
    }
    return page;
  }

  private async countLive(criteria: Criterion[]): Promise<number> {
    const seen = new Set<string>();
    let scanned = 0;
    for (const src of this.searchSources) {
      const c = await this.criteriaFor(src, criteria);
      const plan = qidoPlanFor(c, src.config);
      if (!plan) continue;
      if (plan.uidList && !(await this.uidListSupported(src))) {
        throw new FhirError(
          400,
          'not-supported',
          `The PACS "${src.config.id}" cannot look up several Study Instance UIDs in one query; ask for one id at a time.`,
        );
      }
      const ctx = { ...matchContextFor(src.config), studyLevelOnly: true };
      const size = src.config.pageSize;
      for (let offset = 0; ; offset += size) {
        let rows: DicomDataset[];
        try {
          rows = await src.pacs.searchStudies(plan.match, { limit: size, offset });
        } catch (err) {
          throw this.failed(err, src);
        }
        scanned += rows.length;
        if (scanned > this.cfg.maxCountScan) {
          throw new FhirError(
            400,
            'too-costly',
            `More than ${this.cfg.maxCountScan} studies would have to be counted; narrow the search.`,
          );
        }
        for (const row of rows) {
          const r = mapStudy({ study: row, series: [], instances: [] }, src.config);
          if (r.ok && !seen.has(r.imagingStudy.id!) && matchesAll(r.imagingStudy, c, ctx)) seen.add(r.imagingStudy.id!);
        }
        if (rows.length < size) break;
      }
    }
    return seen.size;
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
