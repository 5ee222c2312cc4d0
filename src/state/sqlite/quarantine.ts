/**
 * Store migration step for quarantined studies: the `studies` status CHECK gains 'quarantined' and the
 * table a `reason` column. SQLite cannot alter a CHECK, so the table is rebuilt from its own current
 * definition (whatever columns other steps added before this one), rows and indexes copied over.
 */
import type Database from 'better-sqlite3';

export function allowQuarantine(db: Database.Database): void {
  const table = db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'studies'`).get() as {
    sql: string;
  };
  const widened = table.sql.replace(
    /CHECK\s*\(\s*status\s+IN\s*\(([^)]*)\)\s*\)/i,
    (_m, list: string) => `CHECK (status IN (${list}, 'quarantined'))`,
  );
  if (widened === table.sql) throw new Error('store migration: the studies status constraint was not found');
  const indexes = db
    .prepare(`SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'studies' AND sql IS NOT NULL`)
    .all() as { sql: string }[];
  db.exec(widened.replace(/^CREATE TABLE\s+("?)studies\1/i, 'CREATE TABLE studies_rebuilt'));
  db.exec('INSERT INTO studies_rebuilt SELECT * FROM studies');
  db.exec('DROP TABLE studies');
  db.exec('ALTER TABLE studies_rebuilt RENAME TO studies');
  for (const index of indexes) db.exec(index.sql);
  // Why a study is quarantined, as a code ('study-uid-conflict'); last_error holds the detail.
  db.exec('ALTER TABLE studies ADD COLUMN reason TEXT');
}
