/**
 * Profile validation: @medplum/core's validator with base FHIR R4 and the TW Core StructureDefinitions
 * (profiles.ts loads them once per process), plus the bridge's own structural checks (structural.ts) for
 * what that validator leaves out (empty values, id/code formats, required bindings).
 */
import type { Resource } from 'fhir/r4';
import { loadProfiles, type LoadedProfiles, type TypeSchema } from './profiles';
import { structuralIssues } from './structural';
import { TWCORE_IMAGING_STUDY_PROFILE } from './terminology/codeSystems';

export { profilesDir, setProfilesDir, validatorLoads, ProfilesUnavailableError, bundledProfilesRoot } from './profiles';

export interface ValidationIssue {
  severity: 'fatal' | 'error' | 'warning' | 'information';
  /** FHIRPath-like location, when known. */
  path?: string;
  message: string;
  /** Which check found it. */
  source: 'medplum' | 'bridge';
}

/** Loads the definitions now (at start-up): throws ProfilesUnavailableError saying what is missing. */
export function preloadValidator(): void {
  loadProfiles();
}

type OutcomeIssue = { severity?: string; details?: { text?: string }; diagnostics?: string; expression?: string[] };

const convert = (issues: OutcomeIssue[]): ValidationIssue[] =>
  issues.map((i) => ({
    severity: (i.severity as ValidationIssue['severity']) ?? 'error',
    path: i.expression?.[0],
    message: i.details?.text ?? i.diagnostics ?? 'invalid',
    source: 'medplum',
  }));

/**
 * medplum's validateResource re-parses a `profile` StructureDefinition on every call (~3 ms for
 * ImagingStudy-twcore, most of a validation). Instead the schema parsed once is put in the type's place for
 * the length of this synchronous call, which is what the validator does with a profile, minus the parse.
 */
function validateWith(p: LoadedProfiles, resource: Resource, schema: TypeSchema | undefined): OutcomeIssue[] {
  const validate = () => p.medplum.validateResource(resource as never) as OutcomeIssue[];
  if (!schema) return validate();
  const types = p.medplum.getAllDataTypes();
  const base = types[resource.resourceType];
  types[resource.resourceType] = schema;
  try {
    return validate();
  } finally {
    types[resource.resourceType] = base;
  }
}

function medplumIssues(resource: Resource, profileUrl: string | undefined): ValidationIssue[] {
  const p = loadProfiles();
  if (!p.knowsType(resource.resourceType))
    return [{ severity: 'error', message: `unknown resource type ${resource.resourceType}`, source: 'medplum' }];
  try {
    return convert(validateWith(p, resource, profileUrl ? p.schema(profileUrl) : undefined));
  } catch (err) {
    // validateResource throws an OperationOutcomeError carrying the errors.
    const outcome = (err as { outcome?: { issue?: OutcomeIssue[] } }).outcome;
    if (outcome?.issue) return convert(outcome.issue);
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
  return [...medplumIssues(resource as Resource, TWCORE_IMAGING_STUDY_PROFILE), ...bridgeIssues(resource)];
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
  const p = loadProfiles();
  const profiles = (r.meta?.profile ?? []).filter((url) => p.schema(url));
  const issues = profiles.length ? profiles.flatMap((url) => medplumIssues(r, url)) : medplumIssues(r, undefined);
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

function verdictOf(resource: unknown, issues: ValidationIssue[]): GuardVerdict {
  const blocking = issues.filter(isBlocking);
  if (!blocking.length) return { ok: true, issues };
  const r = resource as Resource | undefined;
  const what = `${r?.resourceType ?? 'resource'}/${r?.id ?? '?'}`;
  const listed = blocking.slice(0, 3).map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
  return { ok: false, issues, message: `${what} is invalid: ${listed.join('; ')}` };
}

/** Endpoints seen, by content: a source's Endpoint is the same for every study, so it is validated once. */
const ENDPOINTS_KEPT = 64;

/**
 * The run-time guard the sync and sinks put before every write: with `enabled`, a resource with an
 * error-level issue is refused (the caller records it as a failed study and writes nothing). Enabling it
 * loads the profiles at once, so missing profiles stop start-up (ProfilesUnavailableError) instead of
 * failing studies one by one.
 */
export function createResourceGuard(enabled: boolean): ResourceGuard {
  if (enabled) preloadValidator();
  const endpoints = new Map<string, GuardVerdict>();
  const check = (resource: unknown): GuardVerdict => {
    try {
      return verdictOf(resource, validateAny(resource));
    } catch (err) {
      // A validator bug on one resource fails that study, recorded, not the run.
      const message = `validator error: ${err instanceof Error ? err.message : String(err)}`;
      return verdictOf(resource, [{ severity: 'fatal', message, source: 'bridge' }]);
    }
  };
  return {
    enabled,
    check(resource: unknown): GuardVerdict {
      if (!enabled) return { ok: true, issues: [] };
      if ((resource as Resource | undefined)?.resourceType !== 'Endpoint') return check(resource);
      const key = JSON.stringify(resource);
      let verdict = endpoints.get(key);
      if (!verdict) {
        verdict = check(resource);
        if (endpoints.size >= ENDPOINTS_KEPT) endpoints.clear();
        endpoints.set(key, verdict);
      }
      return verdict;
    },
  };
}

/**
 * The check the FHIR sink puts before each Patient it creates (`create` linking): the Patient against its
 * meta.profile (Patient-twcore) and base R4, like every ImagingStudy. Undefined when it may be written, else why
 * not, by path and message only: the values are the patient's own and must reach neither a log nor the store.
 * The guard is built on first use, so `sinks.validation.profilesDir` is set (and checked) before it loads.
 */
export function createPatientGuard(): (patient: unknown) => string | undefined {
  let guard: ResourceGuard | undefined;
  return (patient) => {
    guard ??= createResourceGuard(true);
    const verdict = guard.check(patient);
    return verdict.ok ? undefined : verdict.message.replace(/^Patient\/\S+ is invalid: /, '');
  };
}
