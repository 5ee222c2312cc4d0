/**
 * Prometheus metrics (prom-client) on a registry of the bridge's own: one BridgeMetrics, built once by
 * the composition root (serve) and passed to whoever records. Two ways in:
 * - at the point of work: the outbound clients' request observers (`pacsRequests(id)`, `fhirRequests(name)`,
 *   src/http/observe.ts) and `cacheLookup`;
 * - `observe(...)`: the store's run history, the sources' `stats` and the caches' statistics are read at
 *   scrape time by the collectors below, so sync, sources and caches report without calling anything.
 * The series are a table (STORE_GAUGES, TOTALS, coverage gauges): a name, help, labels and a collector each.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { TRUNCATED_BY_PACS, type PacsSource } from '../dicomweb';
import type { OutboundMetrics, RequestObserver } from '../http';
import type { RunRecord, SourceCounts, StateStore, StudyState } from '../state';
import { feedReadingOf, syncLagSeconds } from './lag';
import type { Coverage } from '../sync';

export const METRIC_PREFIX = 'pacs_fhir_bridge_';

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

/** An HTTP status, or 0 / a word for failures without one (network, timeout). */
export type StatusLabel = number | string;

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const RUN_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600];
/** Finished runs looked at per scrape and source; more runs than this between two scrapes are not counted. */
const RUNS_PER_SCRAPE = 100;
const STUDY_STATES = ['synced', 'failing', 'dead', 'removed', 'quarantined'] as const;

const statusLabel = (s: StatusLabel): string => (s === 0 || s === '0' ? 'error' : String(s));

/** A store that cannot be read (closed, locked) leaves its series out of the scrape; /readyz reports why. */
async function storeRead(read: () => Promise<void>): Promise<boolean> {
  try {
    await read();
    return true;
  } catch {
    return false; // the scrape goes on without the store's series
  }
}

/** One source's figures from the store, read once per scrape before the (synchronous) collectors run. */
interface SourceSnapshot {
  runs: RunRecord[];
  /** Lag from polls (listed apart: feed runs would crowd them out of the newest runs) and the feed's last read. */
  lag: number | undefined;
  counts: SourceCounts;
  quarantined: StudyState[];
  /** Failing and dead-lettered studies (their reasons). */
  unsynced: StudyState[];
  coverage?: Coverage;
}

// Store reads: the only places the metrics touch the store.

async function knownSourcesOf(store: MetricsStore, sources: { id: string }[]): Promise<string[]> {
  const ids = new Set(sources.map((s) => s.id));
  (await store.studies.knownSources()).forEach((id) => ids.add(id));
  return [...ids].sort();
}

function recentRunsOf(store: MetricsStore, source: string): Promise<RunRecord[]> {
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
class ScrapeView {
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

/** A series read at scrape time: reset, then filled by its collector. */
interface CollectedDef {
  type: 'gauge' | 'counter';
  name: string;
  help: string;
  labels: string[];
  collect: (series: Gauge<string> & Counter<string>, view: ScrapeView) => void;
}

// Collectors of the store's state (per known source).

function collectLag(g: Gauge<string>, view: ScrapeView): void {
  view.perSource(({ lag }, source) => {
    if (lag !== undefined) g.set({ source }, lag);
  });
}

function collectStudies(g: Gauge<string>, view: ScrapeView): void {
  view.perSource(({ counts }, source) => {
    for (const state of STUDY_STATES) g.set({ source, state }, counts[state]);
  });
}

function collectDeadLetters(g: Gauge<string>, view: ScrapeView): void {
  view.perSource(({ counts }, source) => g.set({ source }, counts.dead));
}

function collectQuarantined(g: Gauge<string>, view: ScrapeView): void {
  view.perSource(({ quarantined }, source) => {
    g.set({ source, reason: 'study-uid-conflict' }, 0);
    for (const q of quarantined) g.inc({ source, reason: q.reason ?? 'unknown' });
  });
}

/** Failing and dead studies by reason: `truncated-by-pacs` always present (0 when none), `other` for the rest. */
function collectFailingByReason(g: Gauge<string>, view: ScrapeView): void {
  view.perSource(({ unsynced }, source) => {
    for (const state of ['failing', 'dead']) g.set({ source, state, reason: TRUNCATED_BY_PACS }, 0);
    for (const s of unsynced)
      g.inc({ source, state: s.status, reason: s.reason === TRUNCATED_BY_PACS ? TRUNCATED_BY_PACS : 'other' });
  });
}

// Collectors of running totals the sources, sinks and caches keep themselves.

function collectPacsRequests(c: Counter<string>, view: ScrapeView): void {
  for (const s of view.sources)
    for (const [kind, n] of Object.entries(s.stats.requests)) c.inc({ source: s.id, kind }, n);
}

function collectPacsRetries(c: Counter<string>, view: ScrapeView): void {
  for (const s of view.sources) c.inc({ source: s.id }, s.stats.retries);
}

function collectPacsSplits(c: Counter<string>, view: ScrapeView): void {
  for (const s of view.sources) c.inc({ source: s.id }, s.stats.splits);
}

function collectFhirRequests(c: Counter<string>, view: ScrapeView): void {
  for (const sink of view.fhirSinks) {
    const st = sink.stats();
    for (const [kind, n] of Object.entries(st.requests.byKind)) c.inc({ server: sink.name, kind }, n);
    if (st.tokenRequests !== undefined) c.inc({ server: sink.name, kind: 'token' }, st.tokenRequests);
  }
}

function collectFhirRetries(c: Counter<string>, view: ScrapeView): void {
  for (const sink of view.fhirSinks) c.inc({ server: sink.name }, sink.stats().retries);
}

function collectCacheHits(c: Counter<string>, view: ScrapeView): void {
  for (const [cache, t] of view.cacheTotals()) c.inc({ cache }, t.hits);
}

function collectCacheMisses(c: Counter<string>, view: ScrapeView): void {
  for (const [cache, t] of view.cacheTotals()) c.inc({ cache }, t.misses);
}

function collectCacheHitRatio(g: Gauge<string>, view: ScrapeView): void {
  for (const [cache, t] of view.cacheTotals())
    if (t.hits + t.misses > 0) g.set({ cache }, t.hits / (t.hits + t.misses));
}

/** A coverage gauge: each source's Coverage row, filled as `fill` says. */
const fromCoverage =
  (fill: (g: Gauge<string>, c: Coverage) => void) =>
  (g: Gauge<string>, view: ScrapeView): void => {
    for (const c of view.coverage()) fill(g, c);
  };

function fillLastSweep(g: Gauge<string>, c: Coverage): void {
  if (c.lastSweep) g.set({ source: c.sourceId }, Date.parse(c.lastSweep.completedAt) / 1000);
}

function fillSweepStudies(g: Gauge<string>, c: Coverage): void {
  const s = c.lastSweep;
  if (!s) return;
  for (const state of ['listed', 'synced', 'failing', 'dead', 'vanished'] as const)
    g.set({ source: c.sourceId, state }, s[state]);
}

function fillFreshness(g: Gauge<string>, c: Coverage): void {
  const f = c.freshness;
  const quantiles = [
    ['0.5', f.p50],
    ['0.95', f.p95],
    ['1', f.max],
  ] as const;
  for (const [quantile, v] of quantiles) if (v !== null) g.set({ source: c.sourceId, quantile }, v);
}

/** The series read at scrape time, in exposition order. */
const COLLECTED: CollectedDef[] = [
  {
    type: 'gauge',
    name: 'sync_lag_seconds',
    help: 'Now minus the end of the last completed sync window, per source (absent before the first completed poll)',
    labels: ['source'],
    collect: collectLag,
  },
  {
    type: 'gauge',
    name: 'studies',
    help: 'Studies in the embedded store by source and state (synced, failing, dead, removed, quarantined)',
    labels: ['source', 'state'],
    collect: collectStudies,
  },
  {
    type: 'gauge',
    name: 'dead_letters',
    help: 'Dead-lettered studies waiting for replay, per source',
    labels: ['source'],
    collect: collectDeadLetters,
  },
  {
    type: 'gauge',
    name: 'quarantined_studies',
    help: 'Quarantined studies waiting for the PACS to be fixed and a replay, per source and reason',
    labels: ['source', 'reason'],
    collect: collectQuarantined,
  },
  {
    type: 'gauge',
    name: 'failing_studies',
    help: 'Failing and dead-lettered studies per source, state and reason (truncated-by-pacs: the PACS will not list all their series or instances; other)',
    labels: ['source', 'state', 'reason'],
    collect: collectFailingByReason,
  },
  {
    type: 'gauge',
    name: 'sweep_last_complete_timestamp_seconds',
    help: 'When the last complete full-range sweep ended, per source (absent before the first)',
    labels: ['source'],
    collect: fromCoverage(fillLastSweep),
  },
  {
    type: 'gauge',
    name: 'sweep_studies',
    help: 'Studies in the last complete sweep: reported by the PACS (listed), and of them synced, failing, dead; vanished since',
    labels: ['source', 'state'],
    collect: fromCoverage(fillSweepStudies),
  },
  {
    type: 'gauge',
    name: 'sweep_coverage_ratio',
    help: 'Synced ÷ reported by the PACS in the last complete sweep, per source',
    labels: ['source'],
    collect: fromCoverage((g, c) => c.lastSweep && g.set({ source: c.sourceId }, c.lastSweep.coverage)),
  },
  {
    type: 'gauge',
    name: 'pending_oldest_age_seconds',
    help: 'How long the oldest failing or dead-lettered study has waited to be written, per source (0 when none)',
    labels: ['source'],
    collect: fromCoverage((g, c) => g.set({ source: c.sourceId }, c.pending.oldestAgeSeconds ?? 0)),
  },
  {
    type: 'gauge',
    name: 'freshness_seconds',
    help: "Seconds from a study's first sighting to its write, over the studies written in the last 24 h (quantile 0.5, 0.95, 1)",
    labels: ['source', 'quantile'],
    collect: fromCoverage(fillFreshness),
  },
  {
    type: 'gauge',
    name: 'sweep_removals_held',
    help: 'Removals the last complete sweep held for a person (more than reconcile.maxRemovals), per source; 0 when none',
    labels: ['source'],
    collect: fromCoverage((g, c) => g.set({ source: c.sourceId }, c.lastSweep?.held?.removals ?? 0)),
  },
  {
    type: 'gauge',
    name: 'source_coverage_healthy',
    help: "1 when the source's last sweep is recent and its coverage full enough; 0 when overdue, short, held or never swept",
    labels: ['source', 'health'],
    collect: fromCoverage((g, c) => g.set({ source: c.sourceId, health: c.health }, c.health === 'ok' ? 1 : 0)),
  },
  {
    type: 'counter',
    name: 'pacs_requests_total',
    help: 'HTTP requests made to a PACS by source and kind (studies, series, instances, metadata, token)',
    labels: ['source', 'kind'],
    collect: collectPacsRequests,
  },
  {
    type: 'counter',
    name: 'pacs_retries_total',
    help: 'PACS requests retried, per source',
    labels: ['source'],
    collect: collectPacsRetries,
  },
  {
    type: 'counter',
    name: 'pacs_window_splits_total',
    help: 'Study windows or batches split because the PACS truncated its answer, per source',
    labels: ['source'],
    collect: collectPacsSplits,
  },
  {
    type: 'counter',
    name: 'fhir_requests_total',
    help: 'HTTP requests made to a FHIR server by sink and purpose (metadata, endpoint, lookup, transaction, read, update, delete, token)',
    labels: ['server', 'kind'],
    collect: collectFhirRequests,
  },
  {
    type: 'counter',
    name: 'fhir_retries_total',
    help: 'FHIR requests retried after 429, 5xx or network errors, per sink',
    labels: ['server'],
    collect: collectFhirRetries,
  },
  {
    type: 'counter',
    name: 'cache_hits_total',
    help: 'Cache hits by cache',
    labels: ['cache'],
    collect: collectCacheHits,
  },
  {
    type: 'counter',
    name: 'cache_misses_total',
    help: 'Cache misses by cache',
    labels: ['cache'],
    collect: collectCacheMisses,
  },
  {
    type: 'gauge',
    name: 'cache_hit_ratio',
    help: 'Hits / (hits + misses) since start, by cache (absent before the first lookup)',
    labels: ['cache'],
    collect: collectCacheHitRatio,
  },
];

/** Per-source study counters summed from the runs finished since the last scrape (RunRecord.counts keys). */
const RUN_STUDY_COUNTERS = [
  ['studies_discovered_total', 'Studies found on the PACS by sync runs', 'found'],
  ['studies_written_total', 'Studies written (new or changed) by sync runs', 'written'],
  ['studies_failed_total', 'Study failures recorded by sync runs (each is retried later)', 'failed'],
  ['studies_dead_lettered_total', 'Studies that became dead letters in sync runs', 'dead'],
  [
    'studies_quarantined_total',
    'Studies quarantined by sync runs (a Study Instance UID under several patients), never written',
    'quarantined',
  ],
] as const;

/** The series counted from the store's run history: each finished run once, when a scrape first sees it. */
class RunCounters {
  readonly duration: Histogram<'source' | 'kind' | 'status'>;
  private readonly runs: Counter<'source' | 'kind' | 'status'>;
  private readonly studies: { counter: Counter<'source'>; key: keyof RunRecord['counts'] }[];
  /** Runs already counted (or finished before the store was observed), per source. */
  private readonly counted = new Map<string, Set<string>>();

  constructor(registers: Registry[], view: ScrapeView) {
    // Whichever run-derived series is read first counts the runs finished since the last scrape.
    const collect = () => view.perSource(({ runs }, source) => this.countNewRuns(source, runs));
    const p = METRIC_PREFIX;
    this.duration = new Histogram({
      name: `${p}sync_run_duration_seconds`,
      help: 'Duration of finished sync runs by source, kind (poll, backfill, reconcile) and status',
      labelNames: ['source', 'kind', 'status'],
      buckets: RUN_BUCKETS,
      registers,
      collect,
    });
    this.runs = new Counter({
      name: `${p}sync_runs_total`,
      help: 'Finished sync runs by source, kind and status',
      labelNames: ['source', 'kind', 'status'],
      registers,
      collect,
    });
    this.studies = RUN_STUDY_COUNTERS.map(([name, help, key]) => ({
      counter: new Counter({ name: `${p}${name}`, help, labelNames: ['source'], registers, collect }),
      key,
    }));
  }

  /** Runs already finished when the store is first observed are history, not this process's work. */
  async skipFinished(store: MetricsStore, sources: { id: string }[]): Promise<void> {
    await storeRead(async () => {
      for (const source of await knownSourcesOf(store, sources)) {
        const finished = (await recentRunsOf(store, source)).filter((r) => r.endedAt && r.status !== 'running');
        this.counted.set(source, new Set(finished.map((r) => r.runId)));
      }
    });
  }

  /** Counts runs finished since the last call (idempotent, so every run-derived collector may call it). */
  private countNewRuns(source: string, runsNewestFirst: RunRecord[]): void {
    const counted = this.counted.get(source) ?? new Set<string>();
    // Zero rather than absent, so a source's series exist before its first run.
    for (const { counter } of this.studies) counter.inc({ source }, 0);
    for (const run of runsNewestFirst) {
      if (!run.endedAt || run.status === 'running' || counted.has(run.runId)) continue;
      counted.add(run.runId);
      for (const { counter, key } of this.studies) counter.inc({ source }, run.counts[key] ?? 0);
      this.runs.inc({ source, kind: run.kind, status: run.status });
      const seconds = (new Date(run.endedAt).getTime() - new Date(run.startedAt).getTime()) / 1000;
      if (seconds >= 0) this.duration.observe({ source, kind: run.kind, status: run.status }, seconds);
    }
    // Keep only ids still in the listing: older ones can never come back into it.
    const listed = new Set(runsNewestFirst.map((r) => r.runId));
    this.counted.set(source, new Set([...counted].filter((id) => listed.has(id))));
  }
}

export class BridgeMetrics implements OutboundMetrics {
  readonly registry: Registry;
  readonly qidoDuration: Histogram<'source' | 'level' | 'status'>;
  readonly fhirDuration: Histogram<'server' | 'interaction' | 'status'>;
  private readonly view = new ScrapeView();
  private readonly runCounters: RunCounters;
  /** Finished runs present when the store was first observed: read before the first scrape counts any. */
  private baseline: Promise<void> = Promise.resolve();

  constructor(options: { registry?: Registry; defaultMetrics?: boolean } = {}) {
    this.registry = options.registry ?? new Registry();
    const registers = [this.registry];
    const p = METRIC_PREFIX;
    this.qidoDuration = new Histogram({
      name: `${p}qido_request_duration_seconds`,
      help: 'QIDO-RS / WADO-RS requests to a PACS by source, level and HTTP status (error: no response); _count is the request count',
      labelNames: ['source', 'level', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.fhirDuration = new Histogram({
      name: `${p}fhir_request_duration_seconds`,
      help: 'Requests to a FHIR server by server, interaction and HTTP status (error: no response); _count is the request count',
      labelNames: ['server', 'interaction', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.runCounters = new RunCounters(registers, this.view);
    for (const def of COLLECTED) this.register(def, registers);
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: p });
  }

  private register(def: CollectedDef, registers: Registry[]): void {
    const view = this.view;
    const Series = def.type === 'gauge' ? Gauge : Counter;
    new Series({
      name: `${METRIC_PREFIX}${def.name}`,
      help: def.help,
      labelNames: def.labels,
      registers,
      collect(this: Gauge<string> & Counter<string>) {
        this.reset();
        def.collect(this, view);
      },
    } as never);
  }

  /** Feeds the scrape-time collectors. Runs that ended before the store is first observed are not counted. */
  observe(what: Observed): this {
    const view = this.view;
    if (what.sources) {
      const known = new Set(view.sources.map((s) => s.id));
      view.sources.push(...what.sources.filter((s) => !known.has(s.id)));
    }
    if (what.store && !view.store) {
      view.store = what.store;
      this.baseline = this.runCounters.skipFinished(what.store, view.sources);
    }
    if (what.caches) Object.assign(view.caches, what.caches);
    if (what.coverage) view.coverageOf = what.coverage;
    if (what.fhirSinks) {
      const known = new Set(view.fhirSinks.map((f) => f.name));
      view.fhirSinks.push(...what.fhirSinks.filter((f) => !known.has(f.name)));
    }
    return this;
  }

  /** Resolves once the runs finished before `observe` are read (and so will never be counted). */
  async whenObserved(): Promise<void> {
    await this.baseline;
  }

  /** One request to a PACS: level is studies / series / instances / metadata. */
  qidoRequest(source: string, level: string, status: StatusLabel, seconds: number): void {
    this.qidoDuration.observe({ source, level, status: statusLabel(status) }, seconds);
  }

  /** One request to a FHIR server: interaction is transaction / read / search / metadata / token / … */
  fhirRequest(server: string, interaction: string, status: StatusLabel, seconds: number): void {
    this.fhirDuration.observe({ server, interaction, status: statusLabel(status) }, seconds);
  }

  /** The PACS transport's request observer for one source (src/http/observe.ts). */
  pacsRequests(sourceId: string): RequestObserver {
    return (kind, status, seconds) => this.qidoRequest(sourceId, kind, status, seconds);
  }

  /** The FHIR client's request observer for one server. */
  fhirRequests(server: string): RequestObserver {
    return (kind, status, seconds) => this.fhirRequest(server, kind, status, seconds);
  }

  /** One cache lookup, for caches not observed through getStats(). */
  cacheLookup(cache: string, hit: boolean): void {
    const t = this.view.cacheTallies.get(cache) ?? { hits: 0, misses: 0 };
    if (hit) t.hits++;
    else t.misses++;
    this.view.cacheTallies.set(cache, t);
  }

  /** The exposition text and its content type, for a /metrics handler. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    await this.baseline;
    await this.view.refresh();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** A new instance; `serve` builds one with the process metrics (defaultMetrics) and passes it to every recorder. */
export function createMetrics(options?: { registry?: Registry; defaultMetrics?: boolean }): BridgeMetrics {
  return new BridgeMetrics(options);
}
