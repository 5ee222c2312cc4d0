/**
 * Versioned schema of the embedded store. Each migration runs once, in order, inside a transaction;
 * PRAGMA user_version records how far a database has come. Append new steps; never edit old ones.
 */
import type Database from 'better-sqlite3';
import { allowQuarantine } from './quarantine';
import { backfillStudyIndex, STUDY_INDEX_SQL } from './studyIndex';

/** `fill` runs after `sql` in the same transaction, for steps that must read existing rows in code. */
export const MIGRATIONS: {
  version: number;
  description: string;
  sql: string;
  fill?: (db: Database.Database) => void;
}[] = [
  {
    version: 1,
    description: 'checkpoints, per-study state, run history, resources',
    sql: `
      CREATE TABLE checkpoints (
        source_id    TEXT NOT NULL,
        name         TEXT NOT NULL,          -- 'poll' or 'backfill:<from>-<to>'
        through_date TEXT NOT NULL,          -- last StudyDate (YYYYMMDD) whose window is complete
        updated_at   TEXT NOT NULL,
        PRIMARY KEY (source_id, name)
      );
      CREATE TABLE studies (
        source_id         TEXT NOT NULL,
        study_uid         TEXT NOT NULL,
        study_date        TEXT,
        status            TEXT NOT NULL CHECK (status IN ('synced', 'failing', 'dead', 'removed')),
        fingerprint       TEXT,              -- study-level fingerprint when last synced or tried
        content_hash      TEXT,              -- mapper's hash of what was last written
        resource_id       TEXT,
        version_id        TEXT,
        last_seen         TEXT,
        attempts          INTEGER NOT NULL DEFAULT 0,
        next_retry_at     TEXT,
        last_error        TEXT,
        created_by_bridge INTEGER NOT NULL DEFAULT 1,
        updated_at        TEXT NOT NULL,
        PRIMARY KEY (source_id, study_uid)
      );
      CREATE INDEX studies_status ON studies (source_id, status, next_retry_at);
      CREATE TABLE runs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id      TEXT NOT NULL UNIQUE,
        source_id   TEXT NOT NULL,
        kind        TEXT NOT NULL,           -- poll | backfill | reconcile
        started_at  TEXT NOT NULL,
        ended_at    TEXT,
        status      TEXT NOT NULL,           -- running | ok | partial | failed | interrupted
        counts      TEXT NOT NULL DEFAULT '{}',
        error       TEXT
      );
      CREATE INDEX runs_source ON runs (source_id, id);
      CREATE TABLE resources (
        resource_type     TEXT NOT NULL,
        id                TEXT NOT NULL,
        source_id         TEXT,
        study_uid         TEXT,
        version_id        INTEGER NOT NULL,
        content_hash      TEXT NOT NULL,
        created_by_bridge INTEGER NOT NULL,
        last_updated      TEXT NOT NULL,
        json              TEXT NOT NULL,
        PRIMARY KEY (resource_type, id)
      );
      CREATE INDEX resources_study ON resources (source_id, study_uid);
    `,
  },
  {
    version: 2,
    description: 'per-source run leases, so two processes never run one source at once',
    sql: `
      CREATE TABLE source_leases (
        source_id   TEXT PRIMARY KEY,
        owner       TEXT NOT NULL,           -- '<host>:<pid>'
        acquired_at TEXT NOT NULL,
        expires_at  TEXT NOT NULL
      );
    `,
  },
  {
    version: 3,
    description: 'search index over stored ImagingStudy resources, back-filled from those already stored',
    sql: STUDY_INDEX_SQL,
    fill: backfillStudyIndex,
  },
  {
    version: 4,
    description:
      "study status 'quarantined' with a reason (study-uid-conflict), for studies never to be written as they are",
    sql: '',
    fill: allowQuarantine,
  },
];

export function migrate(db: Database.Database): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  const latest = MIGRATIONS[MIGRATIONS.length - 1].version;
  if (current > latest) {
    throw new Error(`store schema version ${current} is newer than this bridge knows (${latest}); upgrade the bridge`);
  }
  for (const m of MIGRATIONS.filter((step) => step.version > current)) {
    db.transaction(() => {
      db.exec(m.sql);
      m.fill?.(db);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
  return latest;
}
