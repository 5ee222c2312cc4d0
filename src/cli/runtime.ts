/**
 * Builds the running parts from validated configuration, the same way for every subcommand:
 * logger, embedded store, sinks (embedded and/or FHIR server), one PACS source per configured source;
 * and the command-line checks they share (--source, dates), which fail as usage errors.
 */
import { InvalidArgumentError } from 'commander';
import { ConfigError, type BridgeConfig } from '../config';
import { parseDate } from '../dicom';
import { UsageError } from './exitCodes';
import type { OutboundMetrics } from '../http';
import { createLogger, type Logger } from '../log';
import {
  createPatientGuard,
  preloadValidator,
  usesBuiltInPatientSystem,
  ProfilesUnavailableError,
  setProfilesDir,
} from '../mapping';
import { createEmbeddedSink } from '../sinks';
import { createFhirSink, type FhirSink } from '../sinks';
import type { Sink } from '../sinks';
import { openStateStore, type StateStore } from '../state';

export function loggerFor(config: BridgeConfig): Logger {
  return createLogger({ level: config.logging.level, pretty: config.logging.pretty });
}

/** The sinks the configuration enables; at least one, or the sync would write nowhere. */
export function buildSinks(
  config: BridgeConfig,
  store: StateStore,
  logger: Logger,
  metrics?: OutboundMetrics,
): { sinks: Sink[]; fhirSinks: FhirSink[] } {
  const sinks: Sink[] = [];
  const fhirSinks: FhirSink[] = [];
  if (config.sinks.embedded.enabled) sinks.push(createEmbeddedSink(store));
  if (config.sinks.fhir) {
    // The profile guard covers the Patients the sink creates (`create` linking), as it covers every ImagingStudy.
    const patientGuard = config.sinks.validation.enabled ? createPatientGuard() : undefined;
    const fhir = createFhirSink(config.sinks.fhir, { logger, metrics, patientGuard });
    sinks.push(fhir);
    fhirSinks.push(fhir);
  }
  if (!sinks.length) throw new Error('no sink enabled: enable sinks.embedded or configure sinks.fhir');
  return { sinks, fhirSinks };
}

/** The configured store, opened and migrated. */
export function openConfiguredStore(config: BridgeConfig): Promise<StateStore> {
  return openStateStore(config.store);
}

/**
 * Points the validator at the configured profiles and, when the guard is on, loads them now: profiles that
 * cannot be loaded are a configuration error (exit 78) naming what is missing, never a failure per study.
 * Returns whether the sync must validate.
 */
export function prepareValidation(config: BridgeConfig): boolean {
  const { enabled, profilesDir } = config.sinks.validation;
  if (!enabled) return false;
  if (profilesDir) setProfilesDir(profilesDir);
  try {
    preloadValidator();
  } catch (err) {
    if (!(err instanceof ProfilesUnavailableError)) throw err;
    throw new ConfigError([
      `sinks.validation: ${err.message}; point sinks.validation.profilesDir at the TW Core 0.3.2 StructureDefinitions, or set sinks.validation.enabled to false`,
    ]);
  }
  return true;
}

/** Sources whose Patient IDs without an issuer get the bridge's own per-source system (no defaultSystem set). */
export function sourcesOnBuiltInPatientSystem(config: Pick<BridgeConfig, 'sources'>): string[] {
  return config.sources.filter(usesBuiltInPatientSystem).map((s) => s.id);
}

/** The one line start-up and `status` give while any source runs on the built-in patient system; else undefined. */
export function builtInPatientSystemNote(config: Pick<BridgeConfig, 'sources'>): string | undefined {
  const ids = sourcesOnBuiltInPatientSystem(config);
  if (!ids.length) return undefined;
  return (
    `source${ids.length > 1 ? 's' : ''} ${ids.join(', ')}: Patient IDs without an issuer use the built-in system ` +
    `urn:pacs-fhir-bridge:<source id>:patient-id, unique only within this bridge; set mapping.patient.defaultSystem ` +
    `(the hospital's OID) to name the real one`
  );
}

/** Logs builtInPatientSystemNote once, at start-up. */
export function warnBuiltInPatientSystem(config: Pick<BridgeConfig, 'sources'>, logger: Logger): void {
  const note = builtInPatientSystemNote(config);
  if (note) logger.warn({ sources: sourcesOnBuiltInPatientSystem(config) }, note);
}

/** The configured source ids, or the one asked for; an unknown id is a usage error that lists the valid ones. */
export function selectSources(config: BridgeConfig, only?: string): string[] {
  const ids = config.sources.map((s) => s.id);
  if (only === undefined) return ids;
  if (!ids.includes(only)) throw new UsageError(`no source with id "${only}" (configured: ${ids.join(', ')})`);
  return [only];
}

/** Commander argument parser for a calendar date (YYYY-MM-DD or YYYYMMDD), returned as YYYYMMDD; else a usage error. */
export function dateArgument(value: string): string {
  const compact = /^\d{4}-\d{2}-\d{2}$|^\d{8}$/.test(value) ? value.replace(/-/g, '') : '';
  if (!parseDate(compact)) throw new InvalidArgumentError('use a date as YYYY-MM-DD or YYYYMMDD.');
  return compact;
}

/** A date range given on the command line, in order. */
export function checkRange(from: string, to: string): void {
  if (from > to) throw new UsageError(`--from ${from} is after --to ${to}`);
}
