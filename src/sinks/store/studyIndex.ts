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

const DICOM_UID_SYSTEM = 'urn:dicom:uid';

export type TokenKind = 'uid' | 'identifier' | 'patient' | 'subject' | 'modality' | 'series';

export interface StudyIndexRow {
  resourceId: string;
  sourceId: string | null;
  startedDay: string | null;
  startedMs: number | null;
  status: string | null;
  tokens: { kind: TokenKind; value: string }[];
}

const STARTED_RE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?/;

/**
 * The start instant, only when `started` states its offset: an offset-less time depends on the source's zone,
 * which config may change.
 */
function startedInstant(m: RegExpExecArray): number | null {
  if (!m[4] || !m[8]) return null;
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  const wall = Date.UTC(
    Number(m[1]),
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
    m[6] ? Number(m[6]) : 0,
    ms,
  );
  if (m[8] === 'Z') return wall;
  const sign = m[8][0] === '-' ? -1 : 1;
  const [oh, om] = m[8].slice(1).split(':').map(Number);
  return wall - sign * (oh * 60 + om) * 60_000;
}

function subjectIdentifierValue(study: ImagingStudy): string | undefined {
  const subject = study.subject;
  if (subject?.identifier) return subject.identifier.value;
  const m = subject?.reference && /^Patient\?identifier=(.*)$/.exec(subject.reference);
  if (!m) return undefined;
  let raw: string;
  try {
    raw = decodeURIComponent(m[1]);
  } catch {
    return undefined; // the matcher cannot read it either
  }
  const bar = raw.indexOf('|');
  return bar < 0 ? raw : raw.slice(bar + 1);
}

/** What the index holds for one stored ImagingStudy. Pure. */
export function studyIndexRow(study: ImagingStudy, resourceId: string, sourceId: string | null): StudyIndexRow {
  const tokens = new Map<string, { kind: TokenKind; value: string }>();
  const add = (kind: TokenKind, value: string | undefined) => {
    if (value !== undefined && value !== null) tokens.set(`${kind}\u0000${value}`, { kind, value: String(value) });
  };
  add('uid', resourceId);
  if (study.id) add('uid', study.id);
  for (const i of study.identifier ?? []) {
    add('identifier', i.value);
    if (i.system === DICOM_UID_SYSTEM && i.value?.startsWith('urn:oid:')) add('uid', i.value.slice('urn:oid:'.length));
  }
  const patient = subjectIdentifierValue(study);
  const hasIdentifier = !!study.subject?.identifier || /^Patient\?identifier=/.test(study.subject?.reference ?? '');
  if (hasIdentifier) add('patient', patient);
  else add('subject', study.subject?.reference);
  for (const m of study.modality ?? []) add('modality', m.code);
  for (const s of study.series ?? []) {
    add('modality', s.modality?.code);
    add('series', s.uid);
  }
  const m = study.started ? STARTED_RE.exec(study.started) : null;
  return {
    resourceId,
    sourceId,
    startedDay: m ? `${m[1]}${m[2]}${m[3]}` : null,
    startedMs: m ? startedInstant(m) : null,
    status: study.status ?? null,
    tokens: [...tokens.values()],
  };
}

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

// ── searching ─────────────────────────────────────────────────────────────

/**
 * Conditions a search can push down, combined with AND. Each `tokens` entry matches a study holding
 * any of its (kind, value) pairs. Day bounds are inclusive YYYYMMDD; instant bounds apply only to
 * studies whose start instant is known (the others stay candidates).
 */
export interface StudyIndexFilter {
  sourceId: string;
  tokens?: { kind: TokenKind; value: string }[][];
  dayFrom?: string;
  dayTo?: string;
  /** Start instant bounds: [from, to) in ms. */
  instant?: { from?: number; to?: number }[];
  /** Each entry an OR-list of statuses. */
  statuses?: string[][];
}

/** SQL (WHERE clause over `i`, the index row) and its parameters. */
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
  return { where: where.join(' AND '), params };
}
