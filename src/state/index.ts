/**
 * The bridge's state: per-study sync state, checkpoints, runs and leases, sweeps, change-feed state, work
 * items, and the resources the embedded sink stores. Repositories behind interfaces (./repositories), on
 * SQLite (one process, the default) or PostgreSQL (several replicas).
 */
import type { StateStore } from './repositories';
import type { StoreConfig } from './config';
import { openSqliteStore } from './sqlite';

export type * from './repositories';
export type * from './types';
export type { StudyIndexFilter, TokenKind } from './studyIndex';
export { storeSchema, postgresSchema, type StoreConfig, type PostgresConfig } from './config';
export { SqliteStateStore, openSqliteStore } from './sqlite';
export { copyState, type CopyOptions } from './copy';

/** Opens (and migrates) the configured store. */
export async function openStateStore(config: StoreConfig): Promise<StateStore> {
  if (config.type === 'postgres') {
    const { openPostgresStore } = await import('./postgres');
    return openPostgresStore(config.postgres);
  }
  return openSqliteStore(config.path);
}
