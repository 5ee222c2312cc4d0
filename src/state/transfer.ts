/**
 * Moving the whole state from one backend to another (`migrate-store`, SQLite to PostgreSQL): each backend
 * exports its tables' rows in key order and imports rows as they are, every column kept (first sightings,
 * freshness, run ids, sweep ids). Rows are plain values; flags travel as booleans.
 */
import type { StateStore } from './repositories';

export interface TransferTable {
  name: string;
  /** Primary key columns: export pages follow them. */
  key: string[];
  columns: string[];
  /** Flag columns (0/1 in SQLite, BOOLEAN in PostgreSQL). */
  booleans: string[];
}

const table = (name: string, key: string[], columns: string[], booleans: string[] = []): TransferTable => ({
  name,
  key,
  columns,
  booleans,
});

/**
 * The tables copied, in order. Not copied: run leases (a lease belongs to a running process) and the
 * ImagingStudy search index, which each import builds from the resources it stores.
 */
export const TRANSFER_TABLES: TransferTable[] = [
  table('checkpoints', ['source_id', 'name'], ['source_id', 'name', 'through_date', 'updated_at']),
  table(
    'studies',
    ['source_id', 'study_uid'],
    [
      'source_id',
      'study_uid',
      'study_date',
      'status',
      'fingerprint',
      'content_hash',
      'resource_id',
      'version_id',
      'last_seen',
      'attempts',
      'next_retry_at',
      'last_error',
      'created_by_bridge',
      'updated_at',
      'reason',
      'first_seen',
      'pending_since',
      'synced_at',
      'freshness_ms',
    ],
    ['created_by_bridge'],
  ),
  table(
    'runs',
    ['id'],
    ['id', 'run_id', 'source_id', 'kind', 'started_at', 'ended_at', 'status', 'counts', 'error', 'owner'],
  ),
  table(
    'sweeps',
    ['id'],
    [
      'id',
      'source_id',
      'started_at',
      'through_date',
      'undated_done',
      'listed',
      'completed_at',
      'synced',
      'failing',
      'dead',
      'vanished',
      'unresolved',
      'held_removals',
      'held_of',
      'held_limit',
      'held_confirmed_at',
    ],
    ['undated_done'],
  ),
  table('feed_state', ['source_id'], ['source_id', 'feed_type', 'last_seq', 'updated_at']),
  table(
    'feed_pending',
    ['source_id', 'study_ref'],
    ['source_id', 'study_ref', 'ready', 'first_seen', 'last_event'],
    ['ready'],
  ),
  table('study_holdings', ['study_uid', 'source_id'], ['study_uid', 'source_id', 'json', 'updated_at']),
  table('sweep_requests', ['source_id'], ['source_id', 'requested_at', 'reason']),
  table(
    'work_items',
    ['id'],
    ['id', 'job', 'source_id', 'payload', 'status', 'claimed_by', 'claim_expires', 'attempts'],
  ),
  table(
    'resources',
    ['resource_type', 'id'],
    [
      'resource_type',
      'id',
      'source_id',
      'study_uid',
      'version_id',
      'content_hash',
      'created_by_bridge',
      'last_updated',
      'json',
    ],
    ['created_by_bridge'],
  ),
];

export type TransferRow = Record<string, string | number | boolean | null>;

/** A backend's side of a copy. */
export interface StateTransfer {
  /** Up to `limit` rows of a table in key order, after the row whose key values are `after`. */
  exportRows(t: TransferTable, after: TransferRow | undefined, limit: number): Promise<TransferRow[]>;
  /** Inserts rows as they are, in one transaction; stored ImagingStudies are indexed for search. */
  importRows(t: TransferTable, rows: TransferRow[]): Promise<void>;
  count(t: TransferTable): Promise<number>;
  /** Empties every state table, leases and search index included. */
  clear(): Promise<void>;
  /** After an import: new runs, sweeps and work items get ids above the imported ones. */
  finish(): Promise<void>;
}

export interface TransferableStore extends StateStore {
  readonly transfer: StateTransfer;
}

export function transferOf(store: StateStore): StateTransfer {
  const transfer = (store as Partial<TransferableStore>).transfer;
  if (!transfer) throw new Error(`the ${store.backend} store cannot export or import its state`);
  return transfer;
}

/** The keys of a row, in the table's key order: the next export page starts after it. */
export const keyOf = (t: TransferTable, row: TransferRow) => t.key.map((k) => row[k]);

/** Flags as booleans, whatever the backend returned. */
export function normalizeRow(t: TransferTable, row: TransferRow): TransferRow {
  const out: TransferRow = {};
  for (const c of t.columns) out[c] = t.booleans.includes(c) ? row[c] === true || row[c] === 1 : row[c];
  return out;
}
