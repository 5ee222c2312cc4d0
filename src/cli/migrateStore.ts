/**
 * `migrate-store`: copies a SQLite store into the configured store (PostgreSQL), so a site moving from one
 * process to replicas keeps its checkpoints, per-study state, runs, sweeps and stored resources. Stop the bridge
 * first: the copy reads the file as it is.
 */
import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { loadConfig } from '../config';
import { copyState, openSqliteStore } from '../state';
import { UsageError } from './exitCodes';
import { openConfiguredStore } from './runtime';

export function migrateStoreCommand(): Command {
  return new Command('migrate-store')
    .description(
      'Copy a SQLite store file into the configured store (store.type "postgres"); run it with the bridge stopped',
    )
    .requiredOption('--from <file>', 'the SQLite store file to copy (e.g. ./data/bridge.sqlite)')
    .option('--force', 'replace the target store state if it already holds any')
    .action(async (opts: { from: string; force?: boolean }) => {
      const config = loadConfig();
      if (config.store.type !== 'postgres')
        throw new UsageError('migrate-store copies into PostgreSQL: set store.type to "postgres" (BRIDGE_STORE_TYPE)');
      if (!existsSync(opts.from)) throw new UsageError(`no store file at ${opts.from}`);
      const from = openSqliteStore(opts.from);
      const to = await openConfiguredStore(config);
      try {
        const copied = await copyState(from, to, {
          force: opts.force,
          onProgress: (table, n) => process.stderr.write(`${table}: ${n} rows\r`),
        });
        process.stderr.write('\n');
        for (const [table, n] of Object.entries(copied)) process.stdout.write(`${table}\t${n}\n`);
        process.stdout.write(`copied ${from.location} into ${to.location}\n`);
      } finally {
        await from.close();
        await to.close();
      }
    });
}
