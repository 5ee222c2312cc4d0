/**
 * Response caching and in-flight sharing around a lookup (node-cache, TTL): reads, pages and counts
 * for `cache.ttlSeconds`; with `keepRendered`, also the search answers as the HTTP layer sent them, so
 * a repeated search skips parsing, paging and serialising (live mode: the store changes under a
 * store-mode search).
 */
import type { ApiConfig } from '../config';
import { AnswerCache } from './cache';
import type { Criterion } from './params';
import type { FoundStudy, RenderedSearch, SearchRequest, StudyLookup, StudyPage } from './studies';

export class CachedLookup implements StudyLookup {
  readonly pages: AnswerCache<StudyPage>;
  readonly reads: AnswerCache<FoundStudy | null>;
  readonly counts: AnswerCache<number>;
  readonly rendered?: AnswerCache<RenderedSearch>;

  constructor(
    private readonly inner: StudyLookup,
    c: ApiConfig['cache'],
    keepRendered: boolean,
  ) {
    const o = { enabled: c.enabled, ttlSeconds: c.ttlSeconds, maxKeys: c.maxKeys, dedupe: c.dedupe };
    this.pages = new AnswerCache(o);
    this.reads = new AnswerCache(o);
    this.counts = new AnswerCache(o);
    if (keepRendered && c.enabled)
      this.rendered = new AnswerCache({ enabled: true, ttlSeconds: c.ttlSeconds, maxKeys: c.maxKeys, dedupe: false });
  }

  get sourceCount(): number {
    return this.inner.sourceCount;
  }

  read(studyUid: string): Promise<FoundStudy | null> {
    return this.reads.getOrLoad(`read|${studyUid}`, () => this.inner.read(studyUid));
  }

  search(req: SearchRequest): Promise<StudyPage> {
    return this.pages.getOrLoad(`search|${JSON.stringify(req)}`, () => this.inner.search(req));
  }

  count(criteria: Criterion[]): Promise<number> {
    return this.counts.getOrLoad(`count|${JSON.stringify(criteria)}`, () => this.inner.count(criteria));
  }

  endpoints() {
    return this.inner.endpoints();
  }

  endpoint(id: string) {
    return this.inner.endpoint(id);
  }

  endpointOf(sourceId: string) {
    return this.inner.endpointOf(sourceId);
  }

  zoneOf(sourceId: string) {
    return this.inner.zoneOf(sourceId);
  }

  /** By metrics label (`api-responses`: repeated searches answered as rendered). */
  caches(): Record<string, AnswerCache<unknown>> {
    return {
      'api-pages': this.pages,
      'api-reads': this.reads,
      ...this.inner.caches(),
      ...(this.rendered ? { 'api-responses': this.rendered } : {}),
    } as Record<string, AnswerCache<unknown>>;
  }

  close(): void {
    for (const c of [this.pages, this.reads, this.counts]) c.close();
    this.rendered?.close();
    this.inner.close();
  }
}
