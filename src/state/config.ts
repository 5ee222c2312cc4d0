/** Where the state lives: the embedded SQLite file (default) or a PostgreSQL database that replicas share. */
import { z } from 'zod';

export const postgresSchema = z
  .object({
    /**
     * A libpq connection string without the password, e.g. postgres://bridge@db:5432/bridge. Unset parts
     * come from the standard PG* environment variables (PGHOST, PGUSER, PGPASSWORD…), as libpq does.
     */
    connectionString: z.string().min(1).optional(),
    /** The password: from the environment (BRIDGE_STORE_PG_PASSWORD or PGPASSWORD), never a config file. */
    password: z.string().optional(),
    /** Connections per process. */
    poolSize: z.number().int().min(1).max(100).default(10),
    /** Schema the bridge's tables live in (created when missing). */
    schema: z
      .string()
      .regex(/^[a-z_][a-z0-9_]*$/, 'a lower-case SQL identifier')
      .default('pacs_fhir_bridge'),
    /** TLS to the server: off, or on with the server certificate verified against the system's CAs. */
    ssl: z.boolean().default(false),
  })
  .strict();

export const storeSchema = z
  .object({
    type: z.enum(['sqlite', 'postgres']).default('sqlite'),
    /** SQLite file of the embedded store (created with its folder when missing). */
    path: z.string().min(1).default('./data/bridge.sqlite'),
    postgres: postgresSchema.default({}),
  })
  .strict()
  .default({});

export type StoreConfig = z.infer<typeof storeSchema>;
export type PostgresConfig = z.infer<typeof postgresSchema>;
