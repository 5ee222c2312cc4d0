/**
 * Versioned schema of the embedded (SQLite) store. Each migration runs once, in order, inside one immediate
 * transaction; PRAGMA user_version records how far a database has come. Append new steps; never edit old ones.
 */
import type Database from 'better-sqlite3';
import { FEED_STATE_SQL } from './feedState';
import { allowQuarantine } from './quarantine';
import { backfillStudyIndex, STUDY_INDEX_SQL } from './studyIndex';
import { WORK_ITEMS_SQL } from './work';

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
  {
    version: 5,
    description: 'change-feed checkpoints and pending studies; sweep requests (the feed went back)',
    sql: FEED_STATE_SQL,
  },
  {
    version: 6,
    description: 'full-range sweeps (progress and coverage per sweep) and per-study sighting times for freshness',
    sql: `
      ALTER TABLE studies ADD COLUMN first_seen TEXT;     -- first time a listing (or feed) saw the study
      ALTER TABLE studies ADD COLUMN pending_since TEXT;  -- when its current unsynced state was first seen; NULL once synced
      ALTER TABLE studies ADD COLUMN synced_at TEXT;      -- last time it was settled by every sink
      ALTER TABLE studies ADD COLUMN freshness_ms INTEGER; -- synced_at minus pending_since at that settle
      CREATE INDEX studies_last_seen ON studies (source_id, last_seen);
      CREATE INDEX studies_date ON studies (source_id, study_date);     -- per-day counts for window planning
      CREATE INDEX studies_synced_at ON studies (source_id, synced_at); -- freshness of recent writes, per scrape
      CREATE TABLE sweeps (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        source_id     TEXT NOT NULL,
        started_at    TEXT NOT NULL,         -- listings at or after this instant prove a study is on the PACS
        through_date  TEXT,                  -- last StudyDate (YYYYMMDD) whose window is listed and settled
        undated_done  INTEGER NOT NULL DEFAULT 0,
        listed        INTEGER NOT NULL DEFAULT 0, -- studies the PACS reported so far in this sweep
        completed_at  TEXT,
        synced        INTEGER,               -- of the listed studies, synced when the sweep completed
        failing       INTEGER,
        dead          INTEGER,
        vanished      INTEGER,
        unresolved    INTEGER
      );
      CREATE INDEX sweeps_source ON sweeps (source_id, id);
    `,
  },
  {
    version: 7,
    description: 'work items: shares of a backfill that processes (replicas on PostgreSQL) claim',
    sql: WORK_ITEMS_SQL,
  },
  {
    version: 8,
    description: 'the process each run belongs to, so a run a killed process left running can be closed by another',
    sql: `ALTER TABLE runs ADD COLUMN owner TEXT; -- '<instance>:<pid>' of the process running it`,
  },
  {
    version: 9,
    description: 'held sweeps: the removals a sweep held for a person (too many at once), and their confirmation',
    sql: `
      ALTER TABLE sweeps ADD COLUMN held_removals INTEGER;  -- vanished studies it would have removed; NULL: none held
      ALTER TABLE sweeps ADD COLUMN held_of INTEGER;        -- studies the store held for the source then
      ALTER TABLE sweeps ADD COLUMN held_limit INTEGER;     -- the most removals reconcile.maxRemovals allowed
      ALTER TABLE sweeps ADD COLUMN held_confirmed_at TEXT; -- when an operator confirmed them (--confirm-removals)
    `,
  },
  {
    version: 10,
    description: 'which sources hold each study, with the study as each maps it (one ImagingStudy for all of them)',
    sql: `
      CREATE TABLE study_holdings (
        study_uid   TEXT NOT NULL,
        source_id   TEXT NOT NULL,
        json        TEXT NOT NULL,           -- the ImagingStudy as this source maps it
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (study_uid, source_id)
      );
    `,
  },
];

/** How long a new connection keeps trying to switch a contended file to WAL. */
const WAL_SWITCH_TIMEOUT_MS = 10_000;

/**
 * Connection settings, in an order safe when another process opens the same file at the same moment:
 * the busy timeout first; then WAL, retried on SQLITE_BUSY because SQLite answers BUSY at once, without
 * the busy handler, when two connections both want to switch a new file's journal mode (a deadlock).
 */
export function prepareConnection(db: Database.Database): void {
  db.pragma('busy_timeout = 5000');
  const deadline = Date.now() + WAL_SWITCH_TIMEOUT_MS;
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5 + Math.random() * 20);
    }
  }
  // FULL: a commit survives power loss, not only a crash of this process.
  db.pragma('synchronous = FULL');
}

/**
 * Brings the schema up to date. Two processes may open a new file at once: the steps run in one
 * IMMEDIATE transaction (the write lock is taken before anything is read), and user_version is read
 * again inside it, so the second process waits for the first and then finds nothing left to do.
 */
export function migrate(db: Database.Database): number {
  const latest = MIGRATIONS[MIGRATIONS.length - 1].version;
  const version = () => {
    const v = db.pragma('user_version', { simple: true }) as number;
    if (v > latest)
      throw new Error(`store schema version ${v} is newer than this bridge knows (${latest}); upgrade the bridge`);
    return v;
  };
  if (version() === latest) return latest; // the usual start: no write lock needed
  db.transaction(() => {
    const current = version();
    for (const m of MIGRATIONS.filter((step) => step.version > current)) {
      db.exec(m.sql);
      m.fill?.(db);
      db.pragma(`user_version = ${m.version}`);
    }
  }).immediate();
  return latest;
}
