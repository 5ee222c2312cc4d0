/**
 * Checks the bridge makes itself on every resource, covering what @medplum/core's validator does not:
 * empty values, primitive formats (id, code, uri, dateTime) and required bindings of the elements the
 * mapper writes. Cheap enough to run on every mapped study.
 */
const ID = /^[A-Za-z0-9\-.]{1,64}$/;
const CODE = /^[^\s]+( [^\s]+)*$/;
const URI = /^\S*$/;
const DATE_TIME =
  /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?)?)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)?)?)?$/;
const STRING_FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;

const IMAGING_STUDY_STATUS = new Set(['registered', 'available', 'cancelled', 'entered-in-error', 'unknown']);
const ENDPOINT_STATUS = new Set(['active', 'suspended', 'error', 'off', 'entered-in-error', 'test']);

/** Keys whose values are FHIR `code`, `uri` or `id` primitives, wherever they appear in the resources we write. */
const CODE_KEYS = new Set(['code', 'status', 'use', 'payloadMimeType']);
const URI_KEYS = new Set(['system', 'profile', 'type']);

function walk(value: unknown, path: string, key: string, issues: string[]): void {
  if (value === null || value === undefined) {
    issues.push(`${path}: null`);
    return;
  }
  if (typeof value === 'string') {
    if (value === '' || value.trim() !== value) issues.push(`${path}: empty or padded string`);
    if (STRING_FORBIDDEN.test(value)) issues.push(`${path}: control characters`);
    if (CODE_KEYS.has(key) && !CODE.test(value)) issues.push(`${path}: not a FHIR code`);
    if (URI_KEYS.has(key) && !URI.test(value)) issues.push(`${path}: not a FHIR uri`);
    return;
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) issues.push(`${path}: not a finite number`);
    return;
  }
  if (typeof value === 'boolean') return;
  if (Array.isArray(value)) {
    if (!value.length) issues.push(`${path}: empty array`);
    value.forEach((v, i) => walk(v, `${path}[${i}]`, key, issues));
    return;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (!entries.length) issues.push(`${path}: empty object`);
    for (const [k, v] of entries) walk(v, `${path}.${k}`, k, issues);
    return;
  }
  issues.push(`${path}: unexpected ${typeof value}`);
}

function checkCount(n: unknown, path: string, issues: string[]): void {
  if (n !== undefined && !(Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 2147483647))
    issues.push(`${path}: not an unsignedInt`);
}

function checkDateTime(s: unknown, path: string, issues: string[]): void {
  if (s !== undefined && !(typeof s === 'string' && DATE_TIME.test(s))) issues.push(`${path}: not a FHIR dateTime`);
}

function checkId(s: unknown, path: string, issues: string[]): void {
  if (s !== undefined && !(typeof s === 'string' && ID.test(s))) issues.push(`${path}: not a FHIR id`);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- walks JSON that may not match any FHIR type
type Unchecked = Record<string, any>;

/** Problems found in a resource, as "path: problem" lines; empty when none. */
export function structuralIssues(resource: unknown): string[] {
  const issues: string[] = [];
  if (typeof resource !== 'object' || resource === null) return ['resource is not an object'];
  const r = resource as Unchecked;
  walk(r, r.resourceType ?? 'Resource', '', issues);
  checkId(r.id, 'id', issues);
  if (r.resourceType === 'ImagingStudy') {
    if (!IMAGING_STUDY_STATUS.has(r.status))
      issues.push('ImagingStudy.status: not in the imagingstudy-status value set');
    if (!r.subject) issues.push('ImagingStudy.subject: missing (1..1)');
    checkDateTime(r.started, 'ImagingStudy.started', issues);
    checkCount(r.numberOfSeries, 'ImagingStudy.numberOfSeries', issues);
    checkCount(r.numberOfInstances, 'ImagingStudy.numberOfInstances', issues);
    (Array.isArray(r.series) ? r.series : []).forEach((s: Unchecked, i: number) => {
      const p = `ImagingStudy.series[${i}]`;
      if (s.uid === undefined) issues.push(`${p}.uid: missing`);
      checkId(s.uid, `${p}.uid`, issues);
      if (!s.modality?.code) issues.push(`${p}.modality: missing`);
      checkCount(s.number, `${p}.number`, issues);
      checkCount(s.numberOfInstances, `${p}.numberOfInstances`, issues);
      checkDateTime(s.started, `${p}.started`, issues);
      (Array.isArray(s.instance) ? s.instance : []).forEach((inst: Unchecked, j: number) => {
        if (inst.uid === undefined) issues.push(`${p}.instance[${j}].uid: missing`);
        checkId(inst.uid, `${p}.instance[${j}].uid`, issues);
        if (!inst.sopClass?.code) issues.push(`${p}.instance[${j}].sopClass: missing`);
        checkCount(inst.number, `${p}.instance[${j}].number`, issues);
      });
    });
  }
  if (r.resourceType === 'Endpoint') {
    if (!ENDPOINT_STATUS.has(r.status)) issues.push('Endpoint.status: not in the endpoint-status value set');
    if (!(typeof r.address === 'string' && /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(r.address)))
      issues.push('Endpoint.address: not an absolute URL');
    for (const m of Array.isArray(r.payloadMimeType) ? r.payloadMimeType : []) {
      if (!/^[a-z]+\/[A-Za-z0-9.+-]+$/.test(m)) issues.push(`Endpoint.payloadMimeType: "${m}" is not a MIME type`);
    }
  }
  return issues;
}
