/**
 * Search index over the stored ImagingStudy resources, so a store-mode search reads only candidate
 * rows instead of parsing every stored study. An index narrows, the API's matcher decides: every
 * condition here is a superset of what the FHIR matcher accepts (token values only, never systems).
 *
 * Tables (schema version 3): `imaging_study_index` one row per ImagingStudy (source, local start day,
 * start instant when the study states its offset, status); `imaging_study_token` its multi-valued
 * search keys: uid (resource id and urn:dicom:uid identifiers), identifier (every identifier value),
 * patient (the subject's identifier value), subject (the subject reference when it has no identifier),
 * modality (study and series codes) and series (Series Instance UIDs).
 */
import type Database from 'better-sqlite3';
import type { ImagingStudy } from 'fhir/r4';
import { studyIndexRow, type StudyIndexFilter, type StudyIndexRow } from '../studyIndex';
import { statement } from './statements';

export const STUDY_INDEX_SQL = `
  CREATE TABLE imaging_study_index (
    resource_id  TEXT PRIMARY KEY,        -- resources.id of the ImagingStudy
    source_id    TEXT,
    started_day  TEXT,                    -- YYYYMMDD, the study's own local day as written in 'started'
    started_ms   INTEGER,                 -- instant of 'started' when it carries its own offset, else NULL
    status       TEXT
  );
  CREATE INDEX imaging_study_index_source ON imaging_study_index (source_id, resource_id);
  CREATE INDEX imaging_study_index_day ON imaging_study_index (source_id, started_day);
  CREATE TABLE imaging_study_token (
    resource_id  TEXT NOT NULL,
    kind         TEXT NOT NULL,           -- uid | identifier | patient | subject | modality | series
    value        TEXT NOT NULL,
    PRIMARY KEY (resource_id, kind, value)
  ) WITHOUT ROWID;
  CREATE INDEX imaging_study_token_value ON imaging_study_token (kind, value, resource_id);
`;

/** Replaces the index entries of one ImagingStudy (call inside the transaction that writes it). */
export function indexStudy(db: Database.Database, row: StudyIndexRow): void {
  unindexStudy(db, row.resourceId);
  statement(
    db,
    'INSERT INTO imaging_study_index (resource_id, source_id, started_day, started_ms, status) VALUES (?, ?, ?, ?, ?)',
  ).run(row.resourceId, row.sourceId, row.startedDay, row.startedMs, row.status);
  const tok = statement(db, 'INSERT OR IGNORE INTO imaging_study_token (resource_id, kind, value) VALUES (?, ?, ?)');
  for (const t of row.tokens) tok.run(row.resourceId, t.kind, t.value);
}

export function unindexStudy(db: Database.Database, resourceId: string): void {
  statement(db, 'DELETE FROM imaging_study_index WHERE resource_id = ?').run(resourceId);
  statement(db, 'DELETE FROM imaging_study_token WHERE resource_id = ?').run(resourceId);
}

/** Migration step: indexes every ImagingStudy already stored. */
export function backfillStudyIndex(db: Database.Database): void {
  const rows = db
    .prepare(`SELECT id, source_id, json FROM resources WHERE resource_type = 'ImagingStudy'`)
    .iterate() as IterableIterator<{ id: string; source_id: string | null; json: string }>;
  // Collected first: better-sqlite3 does not allow writes while an iterator is open on the connection.
  const all: StudyIndexRow[] = [];
  for (const r of rows) all.push(studyIndexRow(JSON.parse(r.json) as ImagingStudy, r.id, r.source_id));
  for (const row of all) indexStudy(db, row);
}

/** SQL (WHERE clause over `i`, the index row, and `r`, its resource row) and its parameters. */
export function filterSql(f: StudyIndexFilter): { where: string; params: unknown[] } {
  const where = ['i.source_id = ?'];
  const params: unknown[] = [f.sourceId];
  for (const any of f.tokens ?? []) {
    if (!any.length) {
      where.push('0');
      continue;
    }
    where.push(
      `i.resource_id IN (SELECT t.resource_id FROM imaging_study_token t WHERE ${any.map(() => '(t.kind = ? AND t.value = ?)').join(' OR ')})`,
    );
    for (const t of any) params.push(t.kind, t.value);
  }
  if (f.dayFrom !== undefined) {
    where.push('i.started_day >= ?');
    params.push(f.dayFrom);
  }
  if (f.dayTo !== undefined) {
    where.push('i.started_day <= ?');
    params.push(f.dayTo);
  }
  for (const b of f.instant ?? []) {
    if (b.from !== undefined) {
      where.push('(i.started_ms IS NULL OR i.started_ms >= ?)');
      params.push(b.from);
    }
    if (b.to !== undefined) {
      where.push('(i.started_ms IS NULL OR i.started_ms < ?)');
      params.push(b.to);
    }
  }
  for (const any of f.statuses ?? []) {
    where.push(any.length ? `i.status IN (${any.map(() => '?').join(', ')})` : '0');
    params.push(...any);
  }
  // Over `r`, the resource row the search joins: its ISO instants order as strings.
  for (const b of f.lastUpdated ?? []) {
    if (b.from !== undefined) {
      where.push('r.last_updated >= ?');
      params.push(b.from);
    }
    if (b.to !== undefined) {
      where.push('r.last_updated < ?');
      params.push(b.to);
    }
  }
  return { where: where.join(' AND '), params };
}
