/** Placeholder until the PostgreSQL repositories land. */
import type { PostgresConfig } from '../config';
import type { StateStore } from '../repositories';

export async function openPostgresStore(_config: PostgresConfig): Promise<StateStore> {
  throw new Error('store.type "postgres" is not available yet');
}
