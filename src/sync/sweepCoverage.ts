/**
 * Proof of coverage, per source: the last complete sweep (what the PACS reported in it against what is
 * synced), the sweep in progress, studies still pending and the oldest of them, freshness (sighting to
 * write), and a verdict. Read by `status`, /status and /metrics alike; read from the store.
 */
import { TRUNCATED_BY_PACS } from '../dicomweb';
import type { PendingSummary, RemovalHold, StateStore, SweepRecord, SweepRequest } from '../state';
import { sweepSchema, type SweepSettings } from './config';
import { describeHold } from './reconcile';

/** `held`: the last sweep held its removals for a person (reconcile.maxRemovals); named first, it needs one. */
export type CoverageHealth = 'ok' | 'never-swept' | 'held' | 'overdue' | 'short';

export interface Coverage {
  sourceId: string;
  health: CoverageHealth;
  /** Why the source is not healthy, in words (empty when ok). */
  problems: string[];
  lastSweep: {
    startedAt: string;
    completedAt: string;
    /** Studies the PACS reported in it. */
    listed: number;
    /** Of those, synced, failing and dead when it completed. */
    synced: number;
    failing: number;
    dead: number;
    vanished: number;
    unresolved: number;
    /** The removals it held for a person instead of making; null when none. */
    held: RemovalHold | null;
    /** synced ÷ listed (1 for an empty PACS). */
    coverage: number;
    ageSeconds: number;
  } | null;
  sweepInProgress: { startedAt: string; throughDate: string | null; listed: number } | null;
  pending: PendingSummary & {
    oldestAgeSeconds: number | null;
    /** Of the pending studies, those the PACS will not list in full (reason `truncated-by-pacs`), and one of them. */
    truncatedByPacs: number;
    truncatedExample: string | null;
  };
  /** Seconds from first sighting to write, of the studies written in the last 24 hours. */
  freshness: { window: '24h'; samples: number; p50: number | null; p95: number | null; max: number | null };
  settings: { maxAgeHours: number; minCoverage: number };
}

export type CoverageStore = Pick<StateStore, 'sweeps' | 'studies' | 'feed'>;

const DAY_MS = 86_400_000;
const DEFAULT_SWEEP = sweepSchema.parse({});

/** The q-quantile (nearest rank) of ascending values. */
export function quantile(sorted: number[], q: number): number | null {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function summarize(s: SweepRecord, now: Date): NonNullable<Coverage['lastSweep']> {
  const synced = s.synced ?? 0;
  return {
    startedAt: s.startedAt,
    completedAt: s.completedAt!,
    listed: s.listed,
    synced,
    failing: s.failing ?? 0,
    dead: s.dead ?? 0,
    vanished: s.vanished ?? 0,
    unresolved: s.unresolved ?? 0,
    held: s.held,
    coverage: s.listed > 0 ? Math.min(1, synced / s.listed) : 1,
    ageSeconds: Math.max(0, (now.getTime() - Date.parse(s.completedAt!)) / 1000),
  };
}

export async function sourceCoverage(
  store: CoverageStore,
  sourceId: string,
  now: Date,
  settings: Pick<SweepSettings, 'maxAgeHours' | 'minCoverage'> = DEFAULT_SWEEP,
): Promise<Coverage> {
  const [last, open, pending, freshMs, request, truncated] = await Promise.all([
    store.sweeps.lastComplete(sourceId),
    store.sweeps.current(sourceId),
    store.studies.pendingSummary(sourceId),
    store.studies.freshnessSince(sourceId, new Date(now.getTime() - DAY_MS)),
    store.feed.sweepRequest(sourceId),
    truncatedByPacs(store, sourceId),
  ]);
  const fresh = freshMs.map((ms) => ms / 1000);
  const lastSweep = last ? summarize(last, now) : null;
  const findings = [
    ...sweepFindings(lastSweep, settings),
    ...requestFindings(lastSweep, request),
    ...truncationFindings(truncated),
  ];
  return {
    sourceId,
    // The first finding names the health: never swept, then held, then overdue, then short.
    health: findings[0]?.health ?? 'ok',
    problems: findings.map((f) => f.problem),
    lastSweep,
    sweepInProgress: open ? { startedAt: open.startedAt, throughDate: open.throughDate, listed: open.listed } : null,
    pending: {
      ...pending,
      oldestAgeSeconds: pending.oldestSince
        ? Math.max(0, (now.getTime() - Date.parse(pending.oldestSince)) / 1000)
        : null,
      truncatedByPacs: truncated.length,
      truncatedExample: truncated[0] ?? null,
    },
    freshness: {
      window: '24h',
      samples: fresh.length,
      p50: quantile(fresh, 0.5),
      p95: quantile(fresh, 0.95),
      max: fresh.length ? fresh[fresh.length - 1]! : null,
    },
    settings: { maxAgeHours: settings.maxAgeHours, minCoverage: settings.minCoverage },
  };
}

interface Finding {
  health: Exclude<CoverageHealth, 'ok'>;
  problem: string;
}

/**
 * What the last complete sweep fails to prove: none yet, removals held for a person, too old, too few synced,
 * or a truncated listing.
 */
function sweepFindings(
  lastSweep: Coverage['lastSweep'],
  settings: Pick<SweepSettings, 'maxAgeHours' | 'minCoverage'>,
): Finding[] {
  if (!lastSweep)
    return [
      {
        health: 'never-swept',
        problem: 'no full-range sweep has completed yet: studies outside the polled days are not proven synced',
      },
    ];
  const out: Finding[] = [];
  if (lastSweep.held) out.push({ health: 'held', problem: describeHold(lastSweep.held) });
  if (lastSweep.ageSeconds > settings.maxAgeHours * 3600)
    out.push({
      health: 'overdue',
      problem: `last complete sweep is ${Math.round(lastSweep.ageSeconds / 3600)} h old (limit ${settings.maxAgeHours} h)`,
    });
  if (lastSweep.coverage < settings.minCoverage)
    out.push({
      health: 'short',
      problem: `${lastSweep.synced} of ${lastSweep.listed} studies the PACS reported are synced (minimum ${(settings.minCoverage * 100).toFixed(1)} %)`,
    });
  if (lastSweep.unresolved > 0)
    out.push({
      health: 'short',
      problem: `${lastSweep.unresolved} PACS searches stayed truncated: the listing may be incomplete`,
    });
  return out;
}

/** A change feed that went back asked for a sweep: until one completes, what it missed is unproven. */
function requestFindings(lastSweep: Coverage['lastSweep'], request: SweepRequest | undefined): Finding[] {
  if (!request || (lastSweep && lastSweep.startedAt >= request.requestedAt)) return [];
  return [
    {
      health: 'overdue',
      problem: `a sweep was requested at ${request.requestedAt} (${request.reason}) and has not completed yet`,
    },
  ];
}

/** The failing and dead studies of a source that failed because the PACS truncated their details. */
async function truncatedByPacs(store: CoverageStore, sourceId: string): Promise<string[]> {
  const [failing, dead] = await Promise.all([
    store.studies.list(sourceId, 'failing'),
    store.studies.list(sourceId, 'dead'),
  ]);
  return [...failing, ...dead].filter((s) => s.reason === TRUNCATED_BY_PACS).map((s) => s.studyUid);
}

/** Studies the PACS will not list in full are not synced, whatever the coverage ratio allows: a setting to fix. */
function truncationFindings(uids: string[]): Finding[] {
  if (!uids.length) return [];
  return [
    {
      health: 'short',
      problem:
        `${uids.length} ${uids.length === 1 ? 'study is' : 'studies are'} not synced because the PACS truncates ` +
        `their series or instances (${TRUNCATED_BY_PACS}, e.g. ${uids[0]}): raise the PACS's limit or check serverLimit`,
    },
  ];
}
