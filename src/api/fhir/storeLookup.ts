/**
 * StateStore lookups: what sync stored, read through the store's search index and decided by the same
 * matcher as live answers; studies the store does not hold (yet) are asked of the live lookup when
 * one is given (`api.storeFallback`), for reads and for searches naming studies by UID.
 */
import type { ImagingStudy } from 'fhir/r4';
import { endpointId } from '../../mapping';
import type { ApiConfig } from '../config';
import type { AnswerCache } from './cache';
import { walkSources, type SourcePart } from './cursor';
import { matchContextFor, matchesAll } from './match';
import type { Criterion } from './params';
import { storeFilterFor } from './storeFilter';
import {
  SourceDirectory,
  type ApiSource,
  type FoundStudy,
  type SearchRequest,
  type StudyLookup,
  type StudyPage,
  type StudyStore,
} from './studies';

/** Candidate rows read from the store's index per round trip. */
const STORE_BATCH = 500;

const stripStoreMeta = (r: ImagingStudy): ImagingStudy => {
  // The store's version bookkeeping is not part of the mapping: drop it so both modes agree.
  if (!r.meta) return r;
  const { versionId: _v, lastUpdated: _l, ...meta } = r.meta;
  const { meta: _m, ...rest } = r;
  return Object.keys(meta).length ? { ...rest, meta } : rest;
};

const stripInstances = (r: ImagingStudy): ImagingStudy =>
  r.series?.some((s) => s.instance) ? { ...r, series: r.series.map(({ instance: _i, ...s }) => s) } : r;

export class StoreLookup extends SourceDirectory implements StudyLookup {
  constructor(
    private readonly cfg: ApiConfig,
    sources: ApiSource[],
    private readonly store: StudyStore,
    private readonly fallback?: StudyLookup,
  ) {
    super(sources, cfg.searchSources);
  }

  caches(): Record<string, AnswerCache<unknown>> {
    return this.fallback?.caches() ?? {};
  }

  close(): void {
    this.fallback?.close();
  }

  async read(studyUid: string): Promise<FoundStudy | null> {
    const stored = await this.store.get<ImagingStudy>('ImagingStudy', studyUid);
    if (stored) {
      const versionId = stored.meta?.versionId;
      return {
        sourceId: this.sourceOfStored(stored) ?? '',
        resource: stripStoreMeta(stored),
        ...(versionId ? { versionId } : {}),
      };
    }
    return this.fallback ? this.fallback.read(studyUid) : null;
  }

  async search(req: SearchRequest): Promise<StudyPage> {
    const page = await this.searchStore(req);
    // Fallback for studies not synced yet: a lookup of particular studies the store has none of goes live.
    if (page.studies.length || !this.fallsBack(req.criteria))
      return { ...page, total: await this.storeCount(req.criteria) };
    return this.fallback!.search(req);
  }

  async count(criteria: Criterion[]): Promise<number> {
    const n = await this.storeCount(criteria);
    if (n || !this.fallsBack(criteria)) return n;
    return this.fallback!.count(criteria);
  }

  private sourceOfStored(r: ImagingStudy): string | undefined {
    const ref = r.endpoint?.[0]?.reference;
    return this.allSources.find((s) => ref === `Endpoint/${endpointId(s.config.id)}`)?.config.id;
  }

  private async storeCount(criteria: Criterion[]): Promise<number> {
    let sum = 0;
    for (const src of this.searchSources) sum += (await this.storeMatches(src, criteria)).length;
    return sum;
  }

  /** The PACS is asked only for named studies (by UID) that the store does not hold. */
  private fallsBack(criteria: Criterion[]): boolean {
    return !!this.fallback && criteria.some((c) => c.kind === 'studyUid');
  }

  /**
   * Matches of one source in id order, read from the store's search index in batches: the index
   * narrows, the matcher decides (as in live mode), on the stored resource so that its meta.lastUpdated
   * counts. Stops once `stopAfter` matches are found.
   */
  private async storeMatches(src: ApiSource, criteria: Criterion[], stopAfter = Infinity): Promise<FoundStudy[]> {
    const ctx = matchContextFor(src.config);
    const filter = storeFilterFor(criteria, src.config.id, ctx.zone);
    const out: FoundStudy[] = [];
    if (!filter) return out;
    for (let after: string | undefined; out.length < stopAfter;) {
      const batch = await this.store.searchImagingStudies(filter, { after, limit: STORE_BATCH });
      for (const stored of batch) {
        if (!matchesAll(stored, criteria, ctx)) continue;
        const r = stripStoreMeta(stored);
        out.push({
          sourceId: src.config.id,
          resource: this.cfg.searchInstances ? r : stripInstances(r),
          ...(stored.meta?.lastUpdated ? { lastUpdated: stored.meta.lastUpdated } : {}),
        });
        if (out.length >= stopAfter) break;
      }
      if (batch.length < STORE_BATCH) break;
      after = batch[batch.length - 1].id;
    }
    return out;
  }

  private async searchStore(req: SearchRequest): Promise<StudyPage> {
    const studies: FoundStudy[] = [];
    const next = await walkSources(req.cursor, this.searchSources.length, async (i, offset): Promise<SourcePart> => {
      const need = req.count - studies.length;
      if (need === 0) return { next: 0 }; // the page is full: the next one starts at this source
      const src = this.searchSources[i];
      // One match beyond the page tells whether another follows; fewer means the source's full length.
      const all = await this.storeMatches(src, req.criteria, offset + need + 1);
      studies.push(...all.slice(offset, offset + need));
      return all.length > offset + need ? { next: offset + need } : { end: all.length };
    });
    return { studies, ...(next ? { next } : {}), problems: [] };
  }
}
