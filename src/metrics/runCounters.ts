/**
 * The series counted from the store's run history (run counts and durations, studies discovered, written,
 * failed, dead-lettered, quarantined): each finished run once, when a scrape first sees it.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { RunRecord } from '../state';
import { METRIC_PREFIX } from './definitions';
import { knownSourcesOf, recentRunsOf, storeRead, type MetricsStore, type ScrapeView } from './snapshot';

const RUN_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600];

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
export class RunCounters {
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
