#!/usr/bin/env node
/**
 * The one executable, `pacs-fhir-bridge`. Every subcommand reads configuration the same way
 * (the `config` package and the top-level config/ folder, validated before anything runs).
 * Exit statuses are defined in exitCodes.ts and listed by `--help`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config';
import { discoverCommand } from './discover';
import { EXIT, EXIT_CODE_HELP, UsageError } from './exitCodes';
import { mapCommand } from './map';
import { migrateStoreCommand } from './migrateStore';
import { serveCommand } from './serve';
import { backfillCommand, replayCommand, statusCommand, syncCommand } from './sync';

/** The version in package.json, which sits two folders up from both src/cli and dist/cli. */
function packageVersion(): string {
  const file = path.join(__dirname, '../../package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

export function buildCli(): Command {
  const program = new Command('pacs-fhir-bridge')
    .description('Puts a DICOMweb PACS into FHIR R4: TW Core ImagingStudy resources linked to WADO-RS Endpoints.')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .showHelpAfterError();
  for (const command of [
    serveCommand(),
    syncCommand(),
    backfillCommand(),
    statusCommand(),
    replayCommand(),
    mapCommand(),
    discoverCommand(),
    migrateStoreCommand(),
  ])
    program.addCommand(command);
  // Commander would exit 1 on a usage error, the status of a failed run: throw instead, and map it below.
  for (const command of [program, ...program.commands]) command.exitOverride().addHelpText('after', EXIT_CODE_HELP);
  return program;
}

/** Turns known errors into one clear message and the exit status of the table, instead of a stack trace. */
export function reportFatal(err: unknown): never {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage); // commander printed it
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(EXIT.config);
  }
  process.stderr.write(`pacs-fhir-bridge: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof UsageError ? EXIT.usage : EXIT.failed);
}

/**
 * A reader that stops early (`status | head -1`) closes the pipe: end quietly, with the status any Unix
 * tool killed by SIGPIPE gets, instead of an EPIPE stack trace.
 */
export function exitQuietlyOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.closedPipe);
    reportFatal(err);
  });
}

if (require.main === module) {
  exitQuietlyOnClosedPipe(process.stdout);
  exitQuietlyOnClosedPipe(process.stderr);
  buildCli().parseAsync(process.argv).catch(reportFatal);
}
