/** Rows of the state tables (the same columns on every backend) and their plain-data form. */
import type {
  RunCounts,
  RunKind,
  RunRecord,
  PutResult,
  RemovalHold,
  ResourcePut,
  RunStatus,
  SourceCounts,
  StoredResourceMeta,
  StudyFailure,
  StudyState,
  StudyStatus,
  SweepRecord,
  WorkItem,
} from './types';

export interface StudyRow {
  source_id: string;
  study_uid: string;
  study_date: string | null;
  status: StudyStatus;
  fingerprint: string | null;
  content_hash: string | null;
  resource_id: string | null;
  version_id: string | null;
  last_seen: string | null;
  attempts: number;
  next_retry_at: string | null;
  last_error: string | null;
  reason: string | null;
  created_by_bridge: number | boolean;
  updated_at: string;
  first_seen: string | null;
  pending_since: string | null;
  synced_at: string | null;
}

export interface SweepRow {
  id: number;
  source_id: string;
  started_at: string;
  through_date: string | null;
  undated_done: number | boolean;
  listed: number;
  completed_at: string | null;
  synced: number | null;
  failing: number | null;
  dead: number | null;
  vanished: number | null;
  unresolved: number | null;
  held_removals?: number | null;
  held_of?: number | null;
  held_limit?: number | null;
  held_confirmed_at?: string | null;
}

/**
 * A completed sweep's `listed`: the distinct studies seen on the PACS since it started (by any listing,
 * before or after a resume), from the per-status counts of studies with last_seen ≥ started_at. A study
 * the PACS lists twice is one row of `studies`, so it counts once; removed ones were not seen.
 */
export function listedOf(byStatus: { status: string; n: number | string }[]): number {
  return byStatus.filter((b) => b.status !== 'removed').reduce((sum, b) => sum + Number(b.n), 0);
}

/**
 * What completing a sweep writes, in column order (completed_at, listed, synced, failing, dead, vanished, unresolved,
 * held_removals, held_of, held_limit): coverage from the per-status counts of the studies seen since it began.
 */
export function sweepCompletion(
  byStatus: { status: string; n: number | string }[],
  r: { vanished: number; unresolved: number; at?: Date; held?: Omit<RemovalHold, 'confirmedAt'> },
): (string | number | null)[] {
  const n = (s: StudyStatus) => Number(byStatus.find((b) => b.status === s)?.n ?? 0);
  return [
    iso(r.at),
    listedOf(byStatus),
    n('synced'),
    n('failing'),
    n('dead'),
    r.vanished,
    r.unresolved,
    r.held?.removals ?? null,
    r.held?.of ?? null,
    r.held?.limit ?? null,
  ];
}

export function toSweep(r: SweepRow): SweepRecord {
  return {
    id: Number(r.id),
    sourceId: r.source_id,
    startedAt: r.started_at,
    throughDate: r.through_date,
    undatedDone: r.undated_done === 1 || r.undated_done === true,
    listed: Number(r.listed),
    completedAt: r.completed_at,
    synced: r.synced,
    failing: r.failing,
    dead: r.dead,
    vanished: r.vanished,
    unresolved: r.unresolved,
    held: toHold(r),
  };
}

function toHold(r: SweepRow): RemovalHold | null {
  if (r.held_removals === null || r.held_removals === undefined) return null;
  return {
    removals: Number(r.held_removals),
    of: Number(r.held_of),
    limit: Number(r.held_limit),
    confirmedAt: r.held_confirmed_at ?? null,
  };
}

export function toState(r: StudyRow): StudyState {
  return {
    sourceId: r.source_id,
    studyUid: r.study_uid,
    studyDate: r.study_date,
    status: r.status,
    fingerprint: r.fingerprint,
    contentHash: r.content_hash,
    resourceId: r.resource_id,
    versionId: r.version_id,
    lastSeen: r.last_seen,
    attempts: Number(r.attempts),
    nextRetryAt: r.next_retry_at,
    lastError: r.last_error,
    reason: r.reason ?? null,
    dead: r.status === 'dead',
    createdByBridge: r.created_by_bridge === 1 || r.created_by_bridge === true,
    updatedAt: r.updated_at,
    firstSeen: r.first_seen,
    pendingSince: r.pending_since,
    syncedAt: r.synced_at,
  };
}

export const iso = (d: Date = new Date()) => d.toISOString();

/** The new attempt count and schedule of a failure, given the study's previous state. Shared by both backends. */
export function failureOutcome(prev: StudyState | undefined, f: StudyFailure, at: Date) {
  const attempts =
    (prev?.status === 'failing' || prev?.status === 'dead' ? prev.attempts : 0) + (f.countAttempt ? 1 : 0);
  const dead = attempts >= f.maxAttempts;
  const nextRetry = dead
    ? null
    : iso(new Date(at.getTime() + (f.countAttempt ? f.retryDelaySeconds(attempts) : 0) * 1000));
  return {
    status: dead ? ('dead' as const) : ('failing' as const),
    attempts,
    nextRetry,
    lastSeen: f.seen === false ? null : iso(at),
    seenAt: iso(f.seenAt ?? at),
    error: f.error.slice(0, 2000),
    reason: f.reason ?? null,
  };
}

/** A source's counts from its studies grouped by status and its stored ImagingStudy count. */
export function sourceCounts(byStatus: { status: StudyStatus; n: number | string }[], resources: number): SourceCounts {
  const n = (s: StudyStatus) => Number(byStatus.find((r) => r.status === s)?.n ?? 0);
  return {
    studies: byStatus.reduce((a, r) => a + Number(r.n), 0),
    synced: n('synced'),
    failing: n('failing'),
    dead: n('dead'),
    removed: n('removed'),
    quarantined: n('quarantined'),
    resources: Number(resources),
  };
}

export interface RunRow {
  run_id: string;
  source_id: string;
  kind: RunKind;
  started_at: string;
  ended_at: string | null;
  status: RunStatus;
  counts: string | RunCounts;
  error: string | null;
  owner?: string | null;
}

export function toRun(r: RunRow): RunRecord {
  return {
    runId: r.run_id,
    sourceId: r.source_id,
    kind: r.kind,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    status: r.status,
    counts: typeof r.counts === 'string' ? (JSON.parse(r.counts) as RunCounts) : r.counts,
    error: r.error,
    owner: r.owner ?? null,
  };
}

export interface WorkItemRow {
  id: number | string;
  job: string;
  source_id: string;
  payload: string | Record<string, unknown>;
  status: WorkItem['status'];
  claimed_by: string | null;
  claim_expires: string | null;
  attempts: number;
}

export function toWorkItem(r: WorkItemRow): WorkItem {
  return {
    id: Number(r.id),
    job: r.job,
    sourceId: r.source_id,
    payload: typeof r.payload === 'string' ? (JSON.parse(r.payload) as Record<string, unknown>) : r.payload,
    status: r.status,
    claimedBy: r.claimed_by,
    claimExpires: r.claim_expires ?? null,
    attempts: Number(r.attempts),
  };
}

export interface MetaRow {
  resource_type: string;
  id: string;
  source_id: string | null;
  study_uid: string | null;
  version_id: number;
  content_hash: string;
  created_by_bridge: number | boolean;
  last_updated: string;
}

export function toMeta(row: MetaRow): StoredResourceMeta {
  return {
    resourceType: row.resource_type,
    id: row.id,
    sourceId: row.source_id,
    studyUid: row.study_uid,
    versionId: Number(row.version_id),
    contentHash: row.content_hash,
    createdByBridge: row.created_by_bridge === 1 || row.created_by_bridge === true,
    lastUpdated: row.last_updated,
  };
}

/** What a put stores, given what was there: undefined when the content hash is equal (no new version). */
export function nextVersion(prev: StoredResourceMeta | undefined, p: ResourcePut) {
  if (prev && prev.contentHash === p.contentHash) return undefined;
  const versionId = (prev?.versionId ?? 0) + 1;
  const lastUpdated = iso(p.at);
  const createdByBridge = prev ? prev.createdByBridge : (p.createdByBridge ?? true);
  const stored = { ...p.resource, meta: { ...p.resource.meta, versionId: String(versionId), lastUpdated } };
  return {
    versionId,
    lastUpdated,
    createdByBridge,
    stored,
    sourceId: p.sourceId ?? prev?.sourceId ?? null,
    studyUid: p.studyUid ?? prev?.studyUid ?? null,
  };
}

/** What a put answers, from what was stored before and what it stores (`nextVersion`; undefined: unchanged). */
export function putResult(prev: StoredResourceMeta | undefined, next: ReturnType<typeof nextVersion>): PutResult {
  if (!next)
    return {
      versionId: String(prev!.versionId),
      unchanged: true,
      created: false,
      createdByBridge: prev!.createdByBridge,
    };
  return { versionId: String(next.versionId), unchanged: false, created: !prev, createdByBridge: next.createdByBridge };
}
