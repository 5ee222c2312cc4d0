/**
 * Prometheus metrics (prom-client): one BridgeMetrics, built once by the composition root and passed in
 * (bridgeMetrics.ts; its series in definitions.ts and runCounters.ts, what a scrape reads in snapshot.ts),
 * and the lag arithmetic the status page shares with it (lag.ts). Re-exports only.
 */
export { BridgeMetrics, createMetrics, type StatusLabel } from './bridgeMetrics';
export { METRIC_PREFIX } from './definitions';
export type { CacheStatsSource, FhirSinkStatsSource, MetricsStore, Observed } from './snapshot';
export {
  syncLagSeconds,
  lagPerRun,
  windowEndOf,
  feedCurrentAt,
  feedReadingOf,
  type FeedReading,
  type RunLagPoint,
} from './lag';
