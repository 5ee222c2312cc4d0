/**
 * Prometheus metrics (prom-client) on a registry of the bridge's own. Two ways in:
 * - small typed calls at the point of work (`metrics.qidoRequest(...)`, `metrics.fhirRequest(...)`);
 * - `observe(...)`: the store's run history, the sources' `stats` and the caches' statistics are read at
 *   scrape time, so sync, sources and caches report without calling anything.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PacsSource } from '../dicomweb/types';
import type { RunRecord, SourceCounts, StateStore, StudyState } from '../state';
import { syncLagSeconds } from './lag';
import type { Coverage } from '../sync/sweepCoverage';

export { syncLagSeconds, lagPerRun, windowEndOf, type RunLagPoint } from './lag';

export const METRIC_PREFIX = 'pacs_fhir_bridge_';

/** What the metrics read from the store. */
export type MetricsStore = Pick<StateStore, 'runs' | 'studies' | 'checkpoints'>;

/** One source's store-derived figures, read once per scrape before the collectors run. */
interface SourceSnapshot {
  runs: RunRecord[];
  pollRuns: RunRecord[];
  checkpoint?: string;
  counts: SourceCounts;
  quarantined: StudyState[];
  coverage?: Coverage;
}

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

/** A store that cannot be read (closed, locked) leaves its series out of the scrape; /readyz reports why. */
async function storeRead(read: () => Promise<void>): Promise<boolean> {
  try {
    await read();
    return true;
  } catch {
    return false; // the scrape goes on without the store's series
  }
}

const statusLabel = (s: StatusLabel): string => (s === 0 || s === '0' ? 'error' : String(s));

export class BridgeMetrics {
  readonly registry: Registry;
  private readonly observed: Required<Observed> = {
    store: undefined as unknown as MetricsStore,
    sources: [],
    caches: {},
    fhirSinks: [],
    coverage: undefined as unknown as NonNullable<Observed['coverage']>,
  };
  private hasStore = false;
  /** The store's figures per source as of this scrape (the collectors are synchronous, the store is not). */
  private snapshot = new Map<string, SourceSnapshot>();
  /** Finished runs present when the store was first observed: history, not counted. */
  private baseline: Promise<unknown> = Promise.resolve();
  /** Runs already counted (or finished before the store was observed), per source. */
  private readonly countedRuns = new Map<string, Set<string>>();
  private readonly cacheTallies = new Map<string, { hits: number; misses: number }>();

  readonly qidoDuration: Histogram<'source' | 'level' | 'status'>;
  readonly fhirDuration: Histogram<'server' | 'interaction' | 'status'>;
  readonly runDuration: Histogram<'source' | 'kind' | 'status'>;
  private readonly studiesDiscovered: Counter<'source'>;
  private readonly studiesWritten: Counter<'source'>;
  private readonly studiesFailed: Counter<'source'>;
  private readonly studiesDeadLettered: Counter<'source'>;
  private readonly studiesQuarantined: Counter<'source'>;
  private readonly runsTotal: Counter<'source' | 'kind' | 'status'>;

  constructor(options: { registry?: Registry; defaultMetrics?: boolean } = {}) {
    this.registry = options.registry ?? new Registry();
    const registers = [this.registry];
    const p = METRIC_PREFIX;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- prom-client calls collect() with its own `this`
    const self = this;

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
    this.runDuration = new Histogram({
      name: `${p}sync_run_duration_seconds`,
      help: 'Duration of finished sync runs by source, kind (poll, backfill, reconcile) and status',
      labelNames: ['source', 'kind', 'status'],
      buckets: RUN_BUCKETS,
      registers,
      collect: () => self.countRunsFromStore(),
    });
    // Whichever run-derived series is read first counts the runs finished since the last scrape.
    const fromRuns = () => self.countRunsFromStore();
    this.runsTotal = new Counter({
      name: `${p}sync_runs_total`,
      help: 'Finished sync runs by source, kind and status',
      labelNames: ['source', 'kind', 'status'],
      registers,
      collect: fromRuns,
    });
    this.studiesDiscovered = new Counter({
      name: `${p}studies_discovered_total`,
      help: 'Studies found on the PACS by sync runs',
      labelNames: ['source'],
      registers,
      collect: fromRuns,
    });
    this.studiesWritten = new Counter({
      name: `${p}studies_written_total`,
      help: 'Studies written (new or changed) by sync runs',
      labelNames: ['source'],
      registers,
      collect: fromRuns,
    });
    this.studiesFailed = new Counter({
      name: `${p}studies_failed_total`,
      help: 'Study failures recorded by sync runs (each is retried later)',
      labelNames: ['source'],
      registers,
      collect: fromRuns,
    });
    this.studiesDeadLettered = new Counter({
      name: `${p}studies_dead_lettered_total`,
      help: 'Studies that became dead letters in sync runs',
      labelNames: ['source'],
      registers,
      collect: fromRuns,
    });
    this.studiesQuarantined = new Counter({
      name: `${p}studies_quarantined_total`,
      help: 'Studies quarantined by sync runs (a Study Instance UID under several patients), never written',
      labelNames: ['source'],
      registers,
      collect: fromRuns,
    });
    new Gauge({
      name: `${p}sync_lag_seconds`,
      help: 'Now minus the end of the last completed sync window, per source (absent before the first completed poll)',
      labelNames: ['source'],
      registers,
      collect() {
        this.reset();
        if (!self.hasStore) return;
        const now = new Date();
        for (const [source, snap] of self.snapshot) {
          // Lag comes from polls alone; feed runs would crowd them out of the newest runs.
          const lag = syncLagSeconds(snap.pollRuns, now, snap.checkpoint);
          if (lag !== undefined) this.set({ source }, lag);
        }
      },
    });
    new Gauge({
      name: `${p}studies`,
      help: 'Studies in the embedded store by source and state (synced, failing, dead, removed, quarantined)',
      labelNames: ['source', 'state'],
      registers,
      collect() {
        this.reset();
        if (!self.hasStore) return;
        for (const [source, { counts }] of self.snapshot)
          for (const state of ['synced', 'failing', 'dead', 'removed', 'quarantined'] as const)
            this.set({ source, state }, counts[state]);
      },
    });
    new Gauge({
      name: `${p}dead_letters`,
      help: 'Dead-lettered studies waiting for replay, per source',
      labelNames: ['source'],
      registers,
      collect() {
        this.reset();
        if (!self.hasStore) return;
        for (const [source, { counts }] of self.snapshot) this.set({ source }, counts.dead);
      },
    });

    new Gauge({
      name: `${p}quarantined_studies`,
      help: 'Quarantined studies waiting for the PACS to be fixed and a replay, per source and reason',
      labelNames: ['source', 'reason'],
      registers,
      collect() {
        this.reset();
        if (!self.hasStore) return;
        for (const [source, { quarantined }] of self.snapshot) {
          this.set({ source, reason: 'study-uid-conflict' }, 0);
          for (const q of quarantined) this.inc({ source, reason: q.reason ?? 'unknown' });
        }
      },
    });
    this.coverageGauges(registers);

    // The sources' own running totals (PacsSource.stats), read as they are.
    new Counter({
      name: `${p}pacs_requests_total`,
      help: 'HTTP requests made to a PACS by source and kind (studies, series, instances, metadata, token)',
      labelNames: ['source', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const s of self.observed.sources)
          for (const [kind, n] of Object.entries(s.stats.requests)) this.inc({ source: s.id, kind }, n);
      },
    });
    new Counter({
      name: `${p}pacs_retries_total`,
      help: 'PACS requests retried, per source',
      labelNames: ['source'],
      registers,
      collect() {
        this.reset();
        for (const s of self.observed.sources) this.inc({ source: s.id }, s.stats.retries);
      },
    });
    new Counter({
      name: `${p}pacs_window_splits_total`,
      help: 'Study windows or batches split because the PACS truncated its answer, per source',
      labelNames: ['source'],
      registers,
      collect() {
        this.reset();
        for (const s of self.observed.sources) this.inc({ source: s.id }, s.stats.splits);
      },
    });

    // FHIR sinks' own running totals.
    new Counter({
      name: `${p}fhir_requests_total`,
      help: 'HTTP requests made to a FHIR server by sink and purpose (metadata, endpoint, lookup, transaction, read, update, delete, token)',
      labelNames: ['server', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const sink of self.observed.fhirSinks) {
          const st = sink.stats();
          for (const [kind, n] of Object.entries(st.requests.byKind)) this.inc({ server: sink.name, kind }, n);
          if (st.tokenRequests !== undefined) this.inc({ server: sink.name, kind: 'token' }, st.tokenRequests);
        }
      },
    });
    new Counter({
      name: `${p}fhir_retries_total`,
      help: 'FHIR requests retried after 429, 5xx or network errors, per sink',
      labelNames: ['server'],
      registers,
      collect() {
        this.reset();
        for (const sink of self.observed.fhirSinks) this.inc({ server: sink.name }, sink.stats().retries);
      },
    });

    // Caches: node-cache statistics of observed caches plus hits/misses reported directly.
    new Counter({
      name: `${p}cache_hits_total`,
      help: 'Cache hits by cache',
      labelNames: ['cache'],
      registers,
      collect() {
        this.reset();
        for (const [cache, t] of self.cacheTotals()) this.inc({ cache }, t.hits);
      },
    });
    new Counter({
      name: `${p}cache_misses_total`,
      help: 'Cache misses by cache',
      labelNames: ['cache'],
      registers,
      collect() {
        this.reset();
        for (const [cache, t] of self.cacheTotals()) this.inc({ cache }, t.misses);
      },
    });
    new Gauge({
      name: `${p}cache_hit_ratio`,
      help: 'Hits / (hits + misses) since start, by cache (absent before the first lookup)',
      labelNames: ['cache'],
      registers,
      collect() {
        this.reset();
        for (const [cache, t] of self.cacheTotals())
          if (t.hits + t.misses > 0) this.set({ cache }, t.hits / (t.hits + t.misses));
      },
    });

    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: p });
  }

  /** Feeds the scrape-time collectors. Runs that ended before the store is first observed are not counted. */
  observe(what: Observed): this {
    if (what.sources) {
      const known = new Set(this.observed.sources.map((s) => s.id));
      this.observed.sources.push(...what.sources.filter((s) => !known.has(s.id)));
    }
    if (what.store && !this.hasStore) {
      this.observed.store = what.store;
      this.hasStore = true;
      // Runs already finished are history, not this process's work: they are not counted.
      const store = what.store;
      this.baseline = storeRead(async () => {
        for (const source of await this.sourceIdsIn(store)) {
          const finished = (await store.runs.listRuns(source, RUNS_PER_SCRAPE)).filter(
            (r) => r.endedAt && r.status !== 'running',
          );
          this.countedRuns.set(source, new Set(finished.map((r) => r.runId)));
        }
      });
    }
    if (what.caches) Object.assign(this.observed.caches, what.caches);
    if (what.coverage) this.observed.coverage = what.coverage;
    if (what.fhirSinks) {
      const known = new Set(this.observed.fhirSinks.map((f) => f.name));
      this.observed.fhirSinks.push(...what.fhirSinks.filter((f) => !known.has(f.name)));
    }
    return this;
  }

  /** Proof of coverage per source: one computation per scrape, shared by the gauges below. */
  private coverageGauges(registers: Registry[]): void {
    const p = METRIC_PREFIX;
    const rows = (): Coverage[] =>
      [...this.snapshot.values()].map((s) => s.coverage).filter((c): c is Coverage => c !== undefined);
    const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge<string>, c: Coverage) => void) =>
      new Gauge({
        name: `${p}${name}`,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const c of rows()) fill(this, c);
        },
      });
    gauge(
      'sweep_last_complete_timestamp_seconds',
      'When the last complete full-range sweep ended, per source (absent before the first)',
      ['source'],
      (g, c) => {
        if (c.lastSweep) g.set({ source: c.sourceId }, Date.parse(c.lastSweep.completedAt) / 1000);
      },
    );
    gauge(
      'sweep_studies',
      'Studies in the last complete sweep: reported by the PACS (listed), and of them synced, failing, dead; vanished since',
      ['source', 'state'],
      (g, c) => {
        const s = c.lastSweep;
        if (!s) return;
        for (const state of ['listed', 'synced', 'failing', 'dead', 'vanished'] as const)
          g.set({ source: c.sourceId, state }, s[state]);
      },
    );
    gauge(
      'sweep_coverage_ratio',
      'Synced ÷ reported by the PACS in the last complete sweep, per source',
      ['source'],
      (g, c) => {
        if (c.lastSweep) g.set({ source: c.sourceId }, c.lastSweep.coverage);
      },
    );
    gauge(
      'pending_oldest_age_seconds',
      'How long the oldest failing or dead-lettered study has waited to be written, per source (0 when none)',
      ['source'],
      (g, c) => {
        g.set({ source: c.sourceId }, c.pending.oldestAgeSeconds ?? 0);
      },
    );
    gauge(
      'freshness_seconds',
      "Seconds from a study's first sighting to its write, over the studies written in the last 24 h (quantile 0.5, 0.95, 1)",
      ['source', 'quantile'],
      (g, c) => {
        const f = c.freshness;
        for (const [q, v] of [
          ['0.5', f.p50],
          ['0.95', f.p95],
          ['1', f.max],
        ] as const)
          if (v !== null) g.set({ source: c.sourceId, quantile: q }, v);
      },
    );
    gauge(
      'source_coverage_healthy',
      "1 when the source's last sweep is recent and its coverage full enough; 0 when overdue, short or never swept",
      ['source', 'health'],
      (g, c) => {
        g.set({ source: c.sourceId, health: c.health }, c.health === 'ok' ? 1 : 0);
      },
    );
  }

  /** One request to a PACS: level is studies / series / instances / metadata. */
  qidoRequest(source: string, level: string, status: StatusLabel, seconds: number): void {
    this.qidoDuration.observe({ source, level, status: statusLabel(status) }, seconds);
  }

  /** One request to a FHIR server: interaction is transaction / read / search / metadata / token / … */
  fhirRequest(server: string, interaction: string, status: StatusLabel, seconds: number): void {
    this.fhirDuration.observe({ server, interaction, status: statusLabel(status) }, seconds);
  }

  /** One cache lookup, for caches not observed through getStats(). */
  cacheLookup(cache: string, hit: boolean): void {
    const t = this.cacheTallies.get(cache) ?? { hits: 0, misses: 0 };
    if (hit) t.hits++;
    else t.misses++;
    this.cacheTallies.set(cache, t);
  }

  /** The exposition text and its content type, for a /metrics handler. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    await this.readStore();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private async sourceIdsIn(store: MetricsStore): Promise<string[]> {
    const ids = new Set(this.observed.sources.map((s) => s.id));
    (await store.studies.knownSources()).forEach((id) => ids.add(id));
    return [...ids].sort();
  }

  /** The store's figures for this scrape; a store that cannot be read leaves its series out. */
  private async readStore(): Promise<void> {
    if (!this.hasStore) return;
    await this.baseline;
    const store = this.observed.store;
    const now = new Date();
    const next = new Map<string, SourceSnapshot>();
    const read = await storeRead(async () => {
      for (const source of await this.sourceIdsIn(store)) {
        const [runs, pollRuns, checkpoint, counts, quarantined, coverage] = await Promise.all([
          store.runs.listRuns(source, RUNS_PER_SCRAPE),
          store.runs.listRuns(source, RUNS_PER_SCRAPE, 'poll'),
          store.checkpoints.get(source, 'poll'),
          store.studies.counts(source),
          store.studies.list(source, 'quarantined'),
          this.observed.coverage?.(source, now),
        ]);
        next.set(source, { runs, pollRuns, checkpoint, counts, quarantined, coverage });
      }
    });
    this.snapshot = read ? next : new Map();
  }

  /** Counts runs finished since the last call (idempotent, so every run-derived collector may call it). */
  private countRunsFromStore(): void {
    for (const [source, { runs }] of this.snapshot) this.countNewRuns(source, runs);
  }

  private countNewRuns(source: string, runsNewestFirst: RunRecord[]): void {
    const counted = this.countedRuns.get(source) ?? new Set<string>();
    // Zero rather than absent, so a source's series exist before its first run.
    for (const c of [
      this.studiesDiscovered,
      this.studiesWritten,
      this.studiesFailed,
      this.studiesDeadLettered,
      this.studiesQuarantined,
    ])
      c.inc({ source }, 0);
    for (const run of runsNewestFirst) {
      if (!run.endedAt || run.status === 'running' || counted.has(run.runId)) continue;
      counted.add(run.runId);
      const c = run.counts;
      this.studiesDiscovered.inc({ source }, c.found ?? 0);
      this.studiesWritten.inc({ source }, c.written ?? 0);
      this.studiesFailed.inc({ source }, c.failed ?? 0);
      this.studiesDeadLettered.inc({ source }, c.dead ?? 0);
      this.studiesQuarantined.inc({ source }, c.quarantined ?? 0);
      this.runsTotal.inc({ source, kind: run.kind, status: run.status });
      const seconds = (new Date(run.endedAt).getTime() - new Date(run.startedAt).getTime()) / 1000;
      if (seconds >= 0) this.runDuration.observe({ source, kind: run.kind, status: run.status }, seconds);
    }
    // Keep only ids still in the listing: older ones can never come back into it.
    const listed = new Set(runsNewestFirst.map((r) => r.runId));
    this.countedRuns.set(source, new Set([...counted].filter((id) => listed.has(id))));
  }

  private cacheTotals(): Map<string, { hits: number; misses: number }> {
    const out = new Map<string, { hits: number; misses: number }>();
    for (const [cache, t] of this.cacheTallies) out.set(cache, { ...t });
    for (const [cache, c] of Object.entries(this.observed.caches)) {
      const s = 'getStats' in c ? c.getStats() : c;
      const t = out.get(cache) ?? { hits: 0, misses: 0 };
      out.set(cache, { hits: t.hits + s.hits, misses: t.misses + s.misses });
    }
    return out;
  }
}

export function createMetrics(options?: { registry?: Registry; defaultMetrics?: boolean }): BridgeMetrics {
  return new BridgeMetrics(options);
}

/** The process-wide instance: modules report into it; `serve` exposes it at /metrics. */
export const metrics = createMetrics({ defaultMetrics: true });
