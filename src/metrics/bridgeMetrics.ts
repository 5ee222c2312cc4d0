/**
 * Prometheus metrics (prom-client) on a registry of the bridge's own: one BridgeMetrics, built once by
 * the composition root (serve) and passed to whoever records. Two ways in:
 * - at the point of work: the outbound clients' request observers (`pacsRequests(id)`, `fhirRequests(name)`,
 *   src/http/observe.ts) and `cacheLookup`;
 * - `observe(...)`: the store's run history, the sources' `stats` and the caches' statistics are read at
 *   scrape time by the collectors, so sync, sources and caches report without calling anything: what a scrape
 *   reads (snapshot.ts), the series filled from it (definitions.ts), and the ones counted from runs (runCounters.ts).
 * The series are a table (definitions.ts's COLLECTED): a name, help, labels and a collector each.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { OutboundMetrics, RequestObserver } from '../http';
import { COLLECTED, METRIC_PREFIX, type CollectedDef } from './definitions';
import { RunCounters } from './runCounters';
import { ScrapeView, type Observed } from './snapshot';

/** An HTTP status, or 0 / a word for failures without one (network, timeout). */
export type StatusLabel = number | string;

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const statusLabel = (s: StatusLabel): string => (s === 0 || s === '0' ? 'error' : String(s));

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
