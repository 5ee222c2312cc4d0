/**
 * `migrate-store`: copies every table of one state store into another (SQLite to PostgreSQL), page by page
 * so tens of millions of studies never sit in memory. Each page is one transaction in the target; a copy
 * that stops halfway leaves a partial target, which a second run with `force` replaces.
 */
import type { StateStore } from './repositories';
import { TRANSFER_TABLES, transferOf, type StateTransfer, type TransferRow } from './transfer';

const PAGE = 500;
const MAX_PAGE = 1000;

export interface CopyOptions {
  /** Replace the target's state when it has any (otherwise a non-empty target is refused). */
  force?: boolean;
  /** Rows per page (at most 1000: a page is one multi-row INSERT, under PostgreSQL's parameter limit). */
  pageSize?: number;
  /** Called after each page, e.g. for a progress line. */
  onProgress?: (table: string, copied: number) => void;
}

/** Copies the state; returns the rows copied per table. */
export async function copyState(
  from: StateStore,
  to: StateStore,
  options: CopyOptions = {},
): Promise<Record<string, number>> {
  const source = transferOf(from);
  const target = transferOf(to);
  await prepareTarget(target, options.force ?? false);
  const page = Math.min(options.pageSize ?? PAGE, MAX_PAGE);
  const copied: Record<string, number> = {};
  for (const t of TRANSFER_TABLES) {
    copied[t.name] = 0;
    let after: TransferRow | undefined;
    for (;;) {
      const rows = await source.exportRows(t, after, page);
      if (!rows.length) break;
      await target.importRows(t, rows);
      copied[t.name] += rows.length;
      options.onProgress?.(t.name, copied[t.name]);
      if (rows.length < page) break;
      after = rows[rows.length - 1];
    }
  }
  await target.finish();
  return copied;
}

async function prepareTarget(target: StateTransfer, force: boolean): Promise<void> {
  if (force) return target.clear();
  for (const t of TRANSFER_TABLES) {
    const n = await target.count(t);
    if (n > 0)
      throw new Error(`the target store is not empty (${t.name}: ${n} rows); copy with force to replace its state`);
  }
}
