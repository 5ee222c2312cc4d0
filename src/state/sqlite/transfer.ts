/** The embedded store's side of a state copy (../transfer.ts). */
import type Database from 'better-sqlite3';
import type { ImagingStudy } from 'fhir/r4';
import { studyIndexRow } from '../studyIndex';
import {
  keyOf,
  normalizeRow,
  TRANSFER_TABLES,
  type StateTransfer,
  type TransferRow,
  type TransferTable,
} from '../transfer';
import { indexStudy } from './studyIndex';

export class SqliteTransfer implements StateTransfer {
  constructor(private readonly db: Database.Database) {}

  async exportRows(t: TransferTable, after: TransferRow | undefined, limit: number): Promise<TransferRow[]> {
    const keys = t.key.join(', ');
    const where = after ? `WHERE (${keys}) > (${t.key.map(() => '?').join(', ')})` : '';
    const rows = this.db
      .prepare(`SELECT ${t.columns.join(', ')} FROM ${t.name} ${where} ORDER BY ${keys} LIMIT ?`)
      .all(...(after ? keyOf(t, after) : []), limit) as TransferRow[];
    return rows.map((r) => normalizeRow(t, r));
  }

  async importRows(t: TransferTable, rows: TransferRow[]): Promise<void> {
    const insert = this.db.prepare(
      `INSERT INTO ${t.name} (${t.columns.join(', ')}) VALUES (${t.columns.map(() => '?').join(', ')})`,
    );
    const value = (r: TransferRow, c: string) => (t.booleans.includes(c) ? (r[c] ? 1 : 0) : r[c]);
    this.db.transaction(() => {
      for (const r of rows) {
        insert.run(...t.columns.map((c) => value(r, c)));
        if (t.name === 'resources' && r.resource_type === 'ImagingStudy')
          indexStudy(
            this.db,
            studyIndexRow(JSON.parse(String(r.json)) as ImagingStudy, String(r.id), r.source_id as string | null),
          );
      }
    })();
  }

  async count(t: TransferTable): Promise<number> {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM ${t.name}`).get() as { n: number }).n;
  }

  async clear(): Promise<void> {
    const tables = [
      ...TRANSFER_TABLES.map((t) => t.name),
      'source_leases',
      'imaging_study_index',
      'imaging_study_token',
    ];
    this.db.transaction(() => tables.forEach((name) => this.db.exec(`DELETE FROM ${name}`)))();
  }

  /** Nothing to do: AUTOINCREMENT already continues after the highest id inserted. */
  async finish(): Promise<void> {}
}
