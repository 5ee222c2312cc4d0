/** What only the PostgreSQL store has: its schema, its migration record, its pool's connection settings. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { openPostgresStore, type PostgresStateStore } from '../../../src/state/postgres';
import { PG_LATEST, PG_MIGRATIONS } from '../../../src/state/postgres/migrations';
import { openSqliteStore } from '../../../src/state/sqlite';
import { postgresMissing, startPostgres, type PostgresServer } from '../../harness/postgres';

const missing = postgresMissing();
const describePg = missing ? describe.skip : describe;
if (missing) console.warn(`PostgreSQL store tests skipped: ${missing}`);

describePg('PostgreSQL store', () => {
  let server: PostgresServer;
  const opened: PostgresStateStore[] = [];
  const open = async (schema: string, over: { password?: string } = {}) => {
    const store = await openPostgresStore({
      connectionString: server.connectionString,
      password: server.password,
      poolSize: 3,
      schema,
      ssl: false,
      ...over,
    });
    opened.push(store);
    return store;
  };
  const sql = async (text: string) => {
    const c = new Client({ connectionString: connectionWithPassword(server) });
    await c.connect();
    try {
      return (await c.query(text)).rows;
    } finally {
      await c.end();
    }
  };

  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await Promise.all(opened.map((s) => s.close()));
    await server.stop();
  });

  it('creates its schema, records each migration once, and reports where it is without the password', async () => {
    const stores = await Promise.all([open('pfb_one'), open('pfb_one'), open('pfb_one')]);
    expect(await sql('SELECT version, description FROM pfb_one.schema_migrations ORDER BY version')).toEqual(
      PG_MIGRATIONS.map((m) => ({ version: m.version, description: m.description })),
    );
    expect(await stores[0].ping()).toBe(`writable (postgres schema pfb_one v${PG_LATEST})`);
    expect(stores[0].location).toBe(`postgres://bridge@127.0.0.1:${server.port}/bridge, schema pfb_one`);
    expect(stores[0].location).not.toContain(server.password);
    // The tables are in the configured schema, none in public.
    const tables = await sql(`SELECT table_schema, COUNT(*)::int AS n FROM information_schema.tables
      WHERE table_schema IN ('pfb_one', 'public') GROUP BY table_schema`);
    expect(tables).toEqual([{ table_schema: 'pfb_one', n: sqliteColumns().size + 1 }]); // + schema_migrations
  });

  it("has SQLite's tables and columns, text byte-ordered", async () => {
    await open('pfb_cols');
    const cols = await sql(`SELECT table_name, column_name, data_type, collation_name FROM information_schema.columns
      WHERE table_schema = 'pfb_cols' AND table_name != 'schema_migrations' ORDER BY table_name, column_name`);
    const pg = new Map<string, string[]>();
    for (const c of cols) pg.set(c.table_name, [...(pg.get(c.table_name) ?? []), c.column_name]);
    expect(pg).toEqual(sqliteColumns());
    expect(cols.filter((c) => c.data_type === 'text' && c.collation_name !== 'C').map((c) => c.column_name)).toEqual([
      'json',
      'json',
      'payload',
    ]);
  });

  it('works in a schema a DBA made for a role that may not create schemas', async () => {
    await sql(`CREATE ROLE limited LOGIN PASSWORD 'limited-pw'; CREATE SCHEMA pfb_dba AUTHORIZATION limited`);
    const limited = {
      connectionString: server.connectionString.replace('bridge@', 'limited@'),
      password: 'limited-pw',
    };
    const store = await openPostgresStore({ ...limited, poolSize: 2, schema: 'pfb_dba', ssl: false });
    opened.push(store);
    await store.checkpoints.advance('src', '20250101');
    expect(await store.checkpoints.get('src')).toBe('20250101');
    await expect(openPostgresStore({ ...limited, poolSize: 2, schema: 'pfb_elsewhere', ssl: false })).rejects.toThrow(
      /permission denied/,
    );
  });

  it('keeps schemas apart', async () => {
    const a = await open('pfb_a');
    const b = await open('pfb_b');
    await a.checkpoints.advance('src', '20250101');
    expect(await b.checkpoints.get('src')).toBeUndefined();
  });

  it('refuses a schema migrated by a newer bridge, and a wrong password', async () => {
    await open('pfb_newer');
    await sql(`INSERT INTO pfb_newer.schema_migrations VALUES (${PG_LATEST + 1}, 'future', 'x')`);
    await expect(open('pfb_newer')).rejects.toThrow(/newer than this bridge knows/);
    await expect(open('pfb_pw', { password: 'wrong' })).rejects.toThrow(/password authentication failed/);
  });
});

/** Each table of a new SQLite store and its columns, sorted. */
function sqliteColumns(): Map<string, string[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pg-cols-'));
  const store = openSqliteStore(path.join(dir, 's.sqlite'));
  try {
    const tables = store.db
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'sqlite_sequence' ORDER BY name`)
      .all() as { name: string }[];
    return new Map(
      tables.map((t) => [
        t.name,
        (store.db.prepare(`PRAGMA table_info(${t.name})`).all() as { name: string }[]).map((c) => c.name).sort(),
      ]),
    );
  } finally {
    void store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function connectionWithPassword(server: PostgresServer): string {
  const url = new URL(server.connectionString);
  url.password = server.password;
  return url.toString();
}
