#!/usr/bin/env node
/**
 * The one executable, `pacs-fhir-bridge`. Every subcommand reads configuration the same way
 * (the `config` package and the top-level config/ folder, validated before anything runs).
 */
import { Command } from 'commander';
import { ConfigError } from '../config';
import { discoverCommand } from './discover';
import { mapCommand } from './map';
import { serveCommand } from './serve';
import { backfillCommand, replayCommand, statusCommand, syncCommand } from './sync';

export function buildCli(): Command {
  const program = new Command('pacs-fhir-bridge')
    .description('Puts a DICOMweb PACS into FHIR R4: TW Core ImagingStudy resources linked to WADO-RS Endpoints.')
    .showHelpAfterError();
  program.addCommand(serveCommand());
  program.addCommand(syncCommand());
  program.addCommand(backfillCommand());
  program.addCommand(statusCommand());
  program.addCommand(replayCommand());
  program.addCommand(mapCommand());
  program.addCommand(discoverCommand());
  return program;
}

/** Turns known errors into one clear message and a non-zero exit, instead of a stack trace. */
export function reportFatal(err: unknown): never {
  if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
  else process.stderr.write(`pacs-fhir-bridge: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof ConfigError ? 78 : 1);
}

if (require.main === module) {
  buildCli().parseAsync(process.argv).catch(reportFatal);
}
