/** The PostgreSQL store's side of a state copy (../transfer.ts). */
import type { ImagingStudy } from 'fhir/r4';
import type { Pool } from 'pg';
import { studyIndexRow } from '../studyIndex';
import {
  keyOf,
  normalizeRow,
  TRANSFER_TABLES,
  type StateTransfer,
  type TransferRow,
  type TransferTable,
} from '../transfer';
import { one, rows, transaction } from './db';
import { indexStudies } from './studyIndex';

/** Tables whose ids come from a sequence. */
const SERIAL_TABLES = ['runs', 'sweeps', 'work_items'];

export class PgTransfer implements StateTransfer {
  constructor(private readonly pool: Pool) {}

  async exportRows(t: TransferTable, after: TransferRow | undefined, limit: number): Promise<TransferRow[]> {
    const keys = t.key.join(', ');
    const params: unknown[] = after ? keyOf(t, after) : [];
    const where = after ? `WHERE (${keys}) > (${t.key.map((_, i) => `$${i + 1}`).join(', ')})` : '';
    params.push(limit);
    const found = await rows<TransferRow>(
      this.pool,
      `SELECT ${t.columns.join(', ')} FROM ${t.name} ${where} ORDER BY ${keys} LIMIT $${params.length}`,
      params,
    );
    return found.map((r) => normalizeRow(t, r));
  }

  /** One multi-row INSERT per page (a page of 500 rows stays under PostgreSQL's 65 535 parameters). */
  async importRows(t: TransferTable, rowsIn: TransferRow[]): Promise<void> {
    if (!rowsIn.length) return;
    const n = t.columns.length;
    const values = rowsIn.map((_, r) => `(${t.columns.map((_c, c) => `$${r * n + c + 1}`).join(', ')})`);
    const params = rowsIn.flatMap((r) => t.columns.map((c) => r[c]));
    await transaction(this.pool, async (c) => {
      await c.query(`INSERT INTO ${t.name} (${t.columns.join(', ')}) VALUES ${values.join(', ')}`, params);
      if (t.name !== 'resources') return;
      const studies = rowsIn.filter((row) => row.resource_type === 'ImagingStudy');
      await indexStudies(
        c,
        studies.map((r) =>
          studyIndexRow(JSON.parse(String(r.json)) as ImagingStudy, String(r.id), r.source_id as string | null),
        ),
      );
    });
  }

  async count(t: TransferTable): Promise<number> {
    return (await one<{ n: number }>(this.pool, `SELECT COUNT(*) AS n FROM ${t.name}`))?.n ?? 0;
  }

  async clear(): Promise<void> {
    const tables = [
      ...TRANSFER_TABLES.map((t) => t.name),
      'source_leases',
      'imaging_study_index',
      'imaging_study_token',
    ];
    await this.pool.query(`TRUNCATE ${tables.join(', ')} RESTART IDENTITY`);
  }

  async finish(): Promise<void> {
    for (const name of SERIAL_TABLES)
      await this.pool.query(
        `SELECT setval(pg_get_serial_sequence('${name}', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), MAX(id) IS NOT NULL) FROM ${name}`,
      );
  }
}
