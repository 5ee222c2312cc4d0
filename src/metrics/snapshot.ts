/**
 * What the metrics read at scrape time: what was observed (the store, the sources' and sinks' stats, the
 * caches, coverage), and the store's figures per source, read once per scrape before the (synchronous)
 * collectors of definitions.ts and runCounters.ts run. The only place the metrics touch the store.
 */
import type { PacsSource } from '../dicomweb';
import type { RunRecord, SourceCounts, StateStore, StudyState } from '../state';
import type { Coverage } from '../sync';
import { feedReadingOf, syncLagSeconds } from './lag';

/** What the metrics read from the store (`feed`, when given: a change feed's last read, for the lag). */
export type MetricsStore = Pick<StateStore, 'runs' | 'studies' | 'checkpoints'> & Partial<Pick<StateStore, 'feed'>>;

/** A node-cache (getStats()) or a cache counting its own hits and misses (the API's AnswerCache). */
export type CacheStatsSource = { getStats(): { hits: number; misses: number } } | { hits: number; misses: number };

/** A FHIR-server sink's running totals (src/sinks/fhir's FhirSink.stats()). */
export interface FhirSinkStatsSource {
  name: string;
  stats(): { requests: { byKind: Record<string, number> }; retries: number; tokenRequests?: number };
}

export interface Observed {
  store?: MetricsStore;
  sources?: Pick<PacsSource, 'id' | 'stats'>[];
  caches?: Record<string, CacheStatsSource>;
  fhirSinks?: FhirSinkStatsSource[];
  /** A source's proof of coverage (src/sync/sweepCoverage.ts), read at scrape time. */
  coverage?: (sourceId: string, now: Date) => Promise<Coverage>;
}

/** Finished runs looked at per scrape and source; more runs than this between two scrapes are not counted. */
const RUNS_PER_SCRAPE = 100;

/** A store that cannot be read (closed, locked) leaves its series out of the scrape; /readyz reports why. */
export async function storeRead(read: () => Promise<void>): Promise<boolean> {
  try {
    await read();
    return true;
  } catch {
    return false; // the scrape goes on without the store's series
  }
}

/** One source's figures from the store, read once per scrape before the (synchronous) collectors run. */
export interface SourceSnapshot {
  runs: RunRecord[];
  /** Lag from polls (listed apart: feed runs would crowd them out of the newest runs) and the feed's last read. */
  lag: number | undefined;
  counts: SourceCounts;
  quarantined: StudyState[];
  /** Failing and dead-lettered studies (their reasons). */
  unsynced: StudyState[];
  coverage?: Coverage;
}

// Store reads.

export async function knownSourcesOf(store: MetricsStore, sources: { id: string }[]): Promise<string[]> {
  const ids = new Set(sources.map((s) => s.id));
  (await store.studies.knownSources()).forEach((id) => ids.add(id));
  return [...ids].sort();
}

export function recentRunsOf(store: MetricsStore, source: string): Promise<RunRecord[]> {
  return store.runs.listRuns(source, RUNS_PER_SCRAPE);
}

async function snapshotOf(
  store: MetricsStore,
  source: string,
  now: Date,
  coverageOf?: (sourceId: string, now: Date) => Promise<Coverage>,
): Promise<SourceSnapshot> {
  const [runs, polls, checkpoint, counts, quarantined, failing, dead, coverage, feed] = await Promise.all([
    recentRunsOf(store, source),
    store.runs.listRuns(source, RUNS_PER_SCRAPE, 'poll'),
    store.checkpoints.get(source, 'poll'),
    store.studies.counts(source),
    store.studies.list(source, 'quarantined'),
    store.studies.list(source, 'failing'),
    store.studies.list(source, 'dead'),
    coverageOf?.(source, now),
    store.feed && feedReadingOf(store.feed, source),
  ]);
  const unsynced = [...failing, ...dead];
  return { runs, lag: syncLagSeconds(polls, now, checkpoint, feed), counts, quarantined, unsynced, coverage };
}

/** What the collectors read at scrape time: what was observed, with the sources known to it. */
export class ScrapeView {
  store?: MetricsStore;
  coverageOf?: (sourceId: string, now: Date) => Promise<Coverage>;
  readonly sources: Pick<PacsSource, 'id' | 'stats'>[] = [];
  readonly caches: Record<string, CacheStatsSource> = {};
  readonly fhirSinks: FhirSinkStatsSource[] = [];
  readonly cacheTallies = new Map<string, { hits: number; misses: number }>();
  /** The store's figures per known source as of this scrape. */
  private snapshot = new Map<string, SourceSnapshot>();

  /** Reads the store for this scrape; a store that cannot be read leaves its series out. */
  async refresh(): Promise<void> {
    const store = this.store;
    if (!store) return;
    const now = new Date();
    const next = new Map<string, SourceSnapshot>();
    const ok = await storeRead(async () => {
      for (const source of await knownSourcesOf(store, this.sources))
        next.set(source, await snapshotOf(store, source, now, this.coverageOf));
    });
    this.snapshot = ok ? next : new Map();
  }

  /** Each known source's figures, for a store-reading collector; nothing without a store. */
  perSource(fill: (snap: SourceSnapshot, source: string) => void): void {
    for (const [source, snap] of this.snapshot) fill(snap, source);
  }

  /** Proof of coverage per source, read once per scrape and shared by the coverage gauges. */
  coverage(): Coverage[] {
    return [...this.snapshot.values()].flatMap((s) => (s.coverage ? [s.coverage] : []));
  }

  /** Hits and misses per cache: reported directly plus node-cache statistics of observed caches. */
  cacheTotals(): Map<string, { hits: number; misses: number }> {
    const out = new Map<string, { hits: number; misses: number }>();
    for (const [cache, t] of this.cacheTallies) out.set(cache, { ...t });
    for (const [cache, c] of Object.entries(this.caches)) {
      const s = 'getStats' in c ? c.getStats() : c;
      const t = out.get(cache) ?? { hits: 0, misses: 0 };
      out.set(cache, { hits: t.hits + s.hits, misses: t.misses + s.misses });
    }
    return out;
  }
}
