/**
 * The sync subcommands as a standalone program, so tests can run the bridge as a child process
 * (and kill it). Run with: ts-node --transpile-only test/integration/sync/cliMain.ts <command> …
 */
import { Command } from 'commander';
import { backfillCommand, replayCommand, statusCommand, syncCommand } from '../../../src/cli/sync';

const program = new Command('pacs-fhir-bridge-sync')
  .addCommand(syncCommand())
  .addCommand(backfillCommand())
  .addCommand(statusCommand())
  .addCommand(replayCommand());

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
