/**
 * `map`: prints the FHIR resources the bridge would write for one study, with its warnings and
 * errors — from saved QIDO-RS results (DICOM JSON files) or fetched live from a configured source.
 * How an integration engineer checks a mapping in the field. Exit code 1 when the study cannot be
 * mapped or (with validation, the default, against the shipped TW Core profiles) the result is invalid; 2 for
 * unusable input; 78 when the profiles cannot be loaded.
 */
import fs from 'node:fs';
import { Command } from 'commander';
import { loadConfig } from '../config';
import { sourceSchema, type SourceConfig } from '../config';
import { createPacsSource } from '../dicomweb';
import { truncationOf } from '../dicomweb';
import { studyUidOf, type DicomDataset } from '../dicom';
import {
  isBlocking,
  mapStudy,
  ProfilesUnavailableError,
  validateEndpoint,
  validateImagingStudy,
  type ValidationIssue,
} from '../mapping';
import type { StudyResults } from '../mapping';

export interface MapCommandOptions {
  study?: string;
  series?: string;
  instances?: string;
  source?: string;
  studyUid?: string;
  patientReference?: string;
  validate: boolean;
  compact?: boolean;
}

export interface MapRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Thrown for input the command cannot use (exit code 2). */
class InputError extends Error {}

function readJsonFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read the ${what} file ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(`the ${what} file ${file} is not JSON: ${(err as Error).message}`);
  }
}

function asList(value: unknown, what: string): DicomDataset[] {
  if (Array.isArray(value)) return value as DicomDataset[];
  if (value && typeof value === 'object') return [value as DicomDataset];
  throw new InputError(`the ${what} file must hold a DICOM JSON object or a QIDO-RS result array`);
}

/** The study result to map: the one with --study-uid, or the only one. */
function pickStudy(studies: DicomDataset[], studyUid: string | undefined): DicomDataset {
  if (studyUid) {
    const found = studies.find((s) => studyUidOf(s) === studyUid);
    if (!found) throw new InputError(`no study ${studyUid} in the study file`);
    return found;
  }
  if (studies.length !== 1)
    throw new InputError(`the study file holds ${studies.length} studies; choose one with --study-uid`);
  return studies[0];
}

function configuredSource(id: string): SourceConfig {
  const config = loadConfig();
  const found = config.sources.find((s) => s.id === id);
  if (!found)
    throw new InputError(
      `no source "${id}" in the configuration (have: ${config.sources.map((s) => s.id).join(', ')})`,
    );
  return found;
}

/** Without --source, saved results are mapped with the default mapping settings. */
const OFFLINE_SOURCE = (): SourceConfig =>
  sourceSchema.parse({ id: 'offline', qidoBase: 'http://localhost/dicom-web' });

async function loadResults(
  opts: MapCommandOptions,
): Promise<{ results: StudyResults; source: SourceConfig; notes: string[] }> {
  const notes: string[] = [];
  if (opts.study) {
    const source = opts.source ? configuredSource(opts.source) : OFFLINE_SOURCE();
    if (!opts.source) notes.push('no --source given: default mapping settings and an "offline" Endpoint are used');
    const study = pickStudy(asList(readJsonFile(opts.study, 'study'), 'study'), opts.studyUid);
    const series = opts.series ? asList(readJsonFile(opts.series, 'series'), 'series') : [];
    const instances = opts.instances ? asList(readJsonFile(opts.instances, 'instances'), 'instances') : [];
    if (!opts.series) notes.push('no --series file: series are known only from instances, if any');
    if (!opts.instances) notes.push('no --instances file: counts come from the PACS and series results');
    return { results: { study, series, instances }, source, notes };
  }
  if (!opts.source || !opts.studyUid)
    throw new InputError(
      'give --study <file> [--series <file>] [--instances <file>], or --source <id> --study-uid <uid>',
    );
  const source = configuredSource(opts.source);
  const pacs = createPacsSource(source);
  const studies = await pacs.searchStudies({ StudyInstanceUID: opts.studyUid }, { limit: 2, offset: 0 });
  const study = studies.find((s) => studyUidOf(s) === opts.studyUid);
  if (!study) throw new InputError(`source ${source.id} has no study ${opts.studyUid}`);
  const details = (await pacs.studyDetails([opts.studyUid], { instances: true })).get(opts.studyUid) ?? {
    series: [],
    instances: [],
  };
  const truncated = truncationOf(details, study);
  if (truncated) notes.push(`warning: ${truncated}; the resource below lists only what the PACS returned`);
  return { results: { study, series: details.series, instances: details.instances }, source, notes };
}

function describeIssue(kind: string, i: ValidationIssue): string {
  return `${kind} [${i.source}] ${i.path ? `${i.path}: ` : ''}${i.message}`;
}

/** Runs the command and returns what it would print; main() writes it out. */
export async function runMap(opts: MapCommandOptions): Promise<MapRun> {
  const err: string[] = [];
  let loaded: Awaited<ReturnType<typeof loadResults>>;
  try {
    loaded = await loadResults(opts);
  } catch (e) {
    if (e instanceof InputError) return { exitCode: 2, stdout: '', stderr: `map: ${e.message}\n` };
    throw e;
  }
  for (const note of loaded.notes) err.push(`note: ${note}`);
  const result = mapStudy(loaded.results, loaded.source, { patientReference: opts.patientReference });
  for (const w of result.warnings) err.push(`warning [${w.code}] ${w.message}`);
  const indent = opts.compact ? undefined : 2;
  if (!result.ok) {
    err.push(`error [${result.error.code}] ${result.error.message}`);
    return {
      exitCode: 1,
      stdout: `${JSON.stringify({ ok: false, error: result.error, warnings: result.warnings }, null, indent)}\n`,
      stderr: `${err.join('\n')}\n`,
    };
  }
  let validation: ValidationIssue[] | undefined;
  if (opts.validate) {
    try {
      validation = [...validateImagingStudy(result.imagingStudy), ...validateEndpoint(result.endpoint)];
    } catch (e) {
      // Validation is on by default with the shipped profiles; only a bad TWCORE_PROFILES_DIR gets here
      // (78: configuration).
      if (!(e instanceof ProfilesUnavailableError)) throw e;
      return { exitCode: 78, stdout: '', stderr: `map: ${e.message} (or skip validation with --no-validate)\n` };
    }
    for (const i of validation) err.push(describeIssue(isBlocking(i) ? 'invalid' : 'validation', i));
  }
  const invalid = (validation ?? []).some(isBlocking);
  const out = {
    ok: !invalid,
    imagingStudy: result.imagingStudy,
    endpoint: result.endpoint,
    contentHash: result.contentHash,
    warnings: result.warnings,
    validation,
  };
  err.push(
    `${invalid ? 'INVALID' : 'ok'}: ImagingStudy/${result.imagingStudy.id} — ${result.imagingStudy.numberOfSeries ?? 0} series, ` +
      `${result.imagingStudy.numberOfInstances ?? 0} instances, ${result.warnings.length} warning(s)` +
      (opts.validate ? `, validated against R4 + ImagingStudy-twcore` : ', not validated'),
  );
  return { exitCode: invalid ? 1 : 0, stdout: `${JSON.stringify(out, null, indent)}\n`, stderr: `${err.join('\n')}\n` };
}

export function mapCommand(): Command {
  return new Command('map')
    .description(
      'Print the ImagingStudy and Endpoint for one study, from saved QIDO-RS JSON files or live from a configured source',
    )
    .option('--study <file>', 'study-level QIDO-RS result (DICOM JSON object or array)')
    .option('--series <file>', 'series-level QIDO-RS results (array)')
    .option('--instances <file>', 'instance-level QIDO-RS results (array)')
    .option('--source <id>', 'configured source: its mapping settings, and with --study-uid the PACS to ask')
    .option('--study-uid <uid>', 'Study Instance UID to fetch (with --source) or to pick from the study file')
    .option('--patient-reference <ref>', 'a resolved Patient/<id> to use as subject')
    .option('--no-validate', 'skip validation against R4 + TW Core')
    .option('--compact', 'print JSON on one line')
    .action(async (opts: MapCommandOptions) => {
      const run = await runMap(opts);
      process.stderr.write(run.stderr);
      process.stdout.write(run.stdout);
      process.exitCode = run.exitCode;
    });
}
