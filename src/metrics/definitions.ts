/**
 * The series read at scrape time (COLLECTED): a name, help, labels and a collector each, filled from the
 * scrape's view (snapshot.ts). The run-derived series are in runCounters.ts, the request histograms in
 * bridgeMetrics.ts.
 */
import type { Counter, Gauge } from 'prom-client';
import { TRUNCATED_BY_PACS } from '../dicomweb';
import type { Coverage } from '../sync';
import type { ScrapeView } from './snapshot';

export const METRIC_PREFIX = 'pacs_fhir_bridge_';

const STUDY_STATES = ['synced', 'failing', 'dead', 'removed', 'quarantined'] as const;

/** A series read at scrape time: reset, then filled by its collector. */
export interface CollectedDef {
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
export const COLLECTED: CollectedDef[] = [
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
