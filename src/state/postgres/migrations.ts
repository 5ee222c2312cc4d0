/**
 * Versioned schema of the PostgreSQL store, in its own schema (store.postgres.schema). `schema_migrations`
 * records each step applied. Steps run in one transaction under an advisory lock, so replicas starting at
 * once migrate once: the second waits, then finds nothing left to do. Append new steps; never edit old ones.
 *
 * Version 1 holds what SQLite's version 7 holds, column for column. Timestamps are ISO-8601 TEXT and every
 * text column is COLLATE "C": comparisons and orderings are byte-wise, as SQLite's, whatever the database's
 * locale. Flags are BOOLEAN (the row converters accept 0/1 and booleans).
 */
import type { Pool } from 'pg';
import { one, transaction } from './db';

const T = 'TEXT COLLATE "C"';

export const PG_MIGRATIONS: { version: number; description: string; sql: string }[] = [
  {
    version: 1,
    description: "the state tables, as SQLite's schema version 7",
    sql: `
      CREATE TABLE checkpoints (
        source_id    ${T} NOT NULL,
        name         ${T} NOT NULL,
        through_date ${T} NOT NULL,
        updated_at   ${T} NOT NULL,
        PRIMARY KEY (source_id, name)
      );
      CREATE TABLE studies (
        source_id         ${T} NOT NULL,
        study_uid         ${T} NOT NULL,
        study_date        ${T},
        status            ${T} NOT NULL CHECK (status IN ('synced', 'failing', 'dead', 'removed', 'quarantined')),
        fingerprint       ${T},
        content_hash      ${T},
        resource_id       ${T},
        version_id        ${T},
        last_seen         ${T},
        attempts          INTEGER NOT NULL DEFAULT 0,
        next_retry_at     ${T},
        last_error        ${T},
        created_by_bridge BOOLEAN NOT NULL DEFAULT TRUE,
        updated_at        ${T} NOT NULL,
        reason            ${T},
        first_seen        ${T},
        pending_since     ${T},
        synced_at         ${T},
        freshness_ms      BIGINT,
        PRIMARY KEY (source_id, study_uid)
      );
      CREATE INDEX studies_status ON studies (source_id, status, next_retry_at);
      CREATE INDEX studies_last_seen ON studies (source_id, last_seen);
      CREATE INDEX studies_date ON studies (source_id, study_date);
      CREATE INDEX studies_synced_at ON studies (source_id, synced_at);
      CREATE TABLE runs (
        id          BIGSERIAL PRIMARY KEY,
        run_id      ${T} NOT NULL UNIQUE,
        source_id   ${T} NOT NULL,
        kind        ${T} NOT NULL,
        started_at  ${T} NOT NULL,
        ended_at    ${T},
        status      ${T} NOT NULL,
        counts      ${T} NOT NULL DEFAULT '{}',
        error       ${T}
      );
      CREATE INDEX runs_source ON runs (source_id, id);
      CREATE TABLE resources (
        resource_type     ${T} NOT NULL,
        id                ${T} NOT NULL,
        source_id         ${T},
        study_uid         ${T},
        version_id        INTEGER NOT NULL,
        content_hash      ${T} NOT NULL,
        created_by_bridge BOOLEAN NOT NULL,
        last_updated      ${T} NOT NULL,
        json              TEXT NOT NULL,      -- the resource as written, byte for byte (JSONB would reorder keys)
        PRIMARY KEY (resource_type, id)
      );
      CREATE INDEX resources_study ON resources (source_id, study_uid);
      CREATE TABLE source_leases (
        source_id   ${T} PRIMARY KEY,         -- the lane: a source id, or '<source>:sweep'
        owner       ${T} NOT NULL,
        acquired_at ${T} NOT NULL,
        expires_at  ${T} NOT NULL
      );
      CREATE TABLE imaging_study_index (
        resource_id  ${T} PRIMARY KEY,
        source_id    ${T},
        started_day  ${T},
        started_ms   BIGINT,
        status       ${T}
      );
      CREATE INDEX imaging_study_index_source ON imaging_study_index (source_id, resource_id);
      CREATE INDEX imaging_study_index_day ON imaging_study_index (source_id, started_day);
      CREATE TABLE imaging_study_token (
        resource_id  ${T} NOT NULL,
        kind         ${T} NOT NULL,
        value        ${T} NOT NULL,
        PRIMARY KEY (resource_id, kind, value)
      );
      CREATE INDEX imaging_study_token_value ON imaging_study_token (kind, value, resource_id);
      CREATE TABLE feed_state (
        source_id   ${T} PRIMARY KEY,
        feed_type   ${T} NOT NULL,
        last_seq    BIGINT NOT NULL,
        updated_at  ${T} NOT NULL
      );
      CREATE TABLE feed_pending (
        source_id   ${T} NOT NULL,
        study_ref   ${T} NOT NULL,
        ready       BOOLEAN NOT NULL,
        first_seen  ${T} NOT NULL,
        last_event  ${T} NOT NULL,
        PRIMARY KEY (source_id, study_ref)
      );
      CREATE TABLE sweep_requests (
        source_id    ${T} PRIMARY KEY,
        requested_at ${T} NOT NULL,
        reason       ${T} NOT NULL
      );
      CREATE TABLE sweeps (
        id            BIGSERIAL PRIMARY KEY,
        source_id     ${T} NOT NULL,
        started_at    ${T} NOT NULL,
        through_date  ${T},
        undated_done  BOOLEAN NOT NULL DEFAULT FALSE,
        listed        INTEGER NOT NULL DEFAULT 0,
        completed_at  ${T},
        synced        INTEGER,
        failing       INTEGER,
        dead          INTEGER,
        vanished      INTEGER,
        unresolved    INTEGER
      );
      CREATE INDEX sweeps_source ON sweeps (source_id, id);
      CREATE TABLE work_items (
        id            BIGSERIAL PRIMARY KEY,
        job           ${T} NOT NULL,
        source_id     ${T} NOT NULL,
        payload       TEXT NOT NULL,
        status        ${T} NOT NULL CHECK (status IN ('pending', 'claimed', 'done')),
        claimed_by    ${T},
        claim_expires ${T},
        attempts      INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX work_items_job ON work_items (job, status, id);
    `,
  },
  {
    version: 2,
    description: "the process each run belongs to (SQLite's schema version 8)",
    sql: `ALTER TABLE runs ADD COLUMN owner ${T};`,
  },
  {
    // Numbered as SQLite's step from here on, so one version names one change on both backends.
    version: 9,
    description: "held sweeps and their confirmation (SQLite's schema version 9)",
    sql: `
      ALTER TABLE sweeps ADD COLUMN held_removals INTEGER;
      ALTER TABLE sweeps ADD COLUMN held_of INTEGER;
      ALTER TABLE sweeps ADD COLUMN held_limit INTEGER;
      ALTER TABLE sweeps ADD COLUMN held_confirmed_at ${T};
    `,
  },
  {
    version: 10,
    description: "which sources hold each study (SQLite's schema version 10)",
    sql: `
      CREATE TABLE study_holdings (
        study_uid   ${T} NOT NULL,
        source_id   ${T} NOT NULL,
        json        TEXT NOT NULL,
        updated_at  ${T} NOT NULL,
        PRIMARY KEY (study_uid, source_id)
      );
    `,
  },
];

export const PG_LATEST = PG_MIGRATIONS[PG_MIGRATIONS.length - 1].version;

/**
 * Creates the schema when missing and applies the steps not yet applied; returns the version reached.
 * The lock is taken before anything else: two replicas creating the schema at once would collide.
 */
export async function migratePostgres(pool: Pool, schema: string): Promise<number> {
  return transaction(pool, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`pacs-fhir-bridge migrate ${schema}`]);
    // Created only when missing: CREATE SCHEMA checks the database privilege first, even with IF NOT EXISTS,
    // and a DBA may have made the schema for a role that cannot create schemas.
    if (!(await one(c, 'SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])))
      await c.query(`CREATE SCHEMA "${schema}"`);
    // The steps name tables unqualified: they land in this schema even if the connection's path says otherwise.
    await c.query(`SET LOCAL search_path TO "${schema}"`);
    await c.query(`CREATE TABLE IF NOT EXISTS "${schema}".schema_migrations (
      version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)`);
    const row = await one<{ v: number | null }>(c, `SELECT MAX(version) AS v FROM "${schema}".schema_migrations`);
    const current = row?.v ?? 0;
    if (current > PG_LATEST)
      throw new Error(
        `store schema version ${current} is newer than this bridge knows (${PG_LATEST}); upgrade the bridge`,
      );
    for (const m of PG_MIGRATIONS.filter((step) => step.version > current)) {
      await c.query(m.sql);
      await c.query(
        `INSERT INTO "${schema}".schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)`,
        [m.version, m.description, new Date().toISOString()],
      );
    }
    return PG_LATEST;
  });
}
