/**
 * Prometheus metrics (prom-client): one BridgeMetrics, built once by the composition root and passed in
 * (bridgeMetrics.ts), and the lag arithmetic the status page shares with it (lag.ts).
 */
export {
  BridgeMetrics,
  createMetrics,
  METRIC_PREFIX,
  type CacheStatsSource,
  type FhirSinkStatsSource,
  type MetricsStore,
  type Observed,
  type StatusLabel,
} from './bridgeMetrics';
export {
  syncLagSeconds,
  lagPerRun,
  windowEndOf,
  feedCurrentAt,
  feedReadingOf,
  type FeedReading,
  type RunLagPoint,
} from './lag';
