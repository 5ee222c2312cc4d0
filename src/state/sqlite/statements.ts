/**
 * Prepared statements kept per connection. Preparing on every call cost 7 % of the bridge's CPU in a
 * profiled full sync. Bounded, because search statements are built from the criteria.
 */
import type Database from 'better-sqlite3';

const MAX_CACHED = 256;
const caches = new WeakMap<Database.Database, Map<string, Database.Statement>>();

/** The statement for this SQL on this connection, prepared once. Not for `iterate()`, which holds it busy. */
export function statement(db: Database.Database, sql: string): Database.Statement {
  let cache = caches.get(db);
  if (!cache) caches.set(db, (cache = new Map()));
  let stmt = cache.get(sql);
  if (!stmt) {
    if (cache.size >= MAX_CACHED) cache.clear();
    stmt = db.prepare(sql);
    cache.set(sql, stmt);
  }
  return stmt;
}
