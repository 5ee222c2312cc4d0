/**
 * Transaction Bundles for a batch of studies, and reading their answers. Pure functions.
 */
import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Coding, Endpoint, ImagingStudy, Patient, Reference, Resource } from 'fhir/r4';
import type { PatientLinkNote, StudyWrite } from '../sink';
import type { LinkPlan } from './patientLink';
import { DICOM_UID_SYSTEM, studyCriteria, studyIdentifierValue } from './query';

/** One study ready to go into a Bundle. */
export interface PreparedStudy {
  write: StudyWrite;
  resource: ImagingStudy;
  /** PUT target: `ImagingStudy?identifier=…` or `ImagingStudy/<id>`. */
  url: string;
  ifMatch?: string;
  /** Set when the Patient is created in the same transaction. */
  patient?: { key: string; resource: Patient; ifNoneExist: string };
  note: PatientLinkNote;
}

export function withTag<T extends Resource>(resource: T, tag: Coding): T {
  const tags = resource.meta?.tag ?? [];
  if (tags.some((t) => t.system === tag.system && t.code === tag.code)) return resource;
  return { ...resource, meta: { ...resource.meta, tag: [...tags, tag] } };
}

/** The study's DICOM identifier, added when the mapper left it out: conditional updates match on it. */
export function withStudyIdentifier(study: ImagingStudy, studyUid: string): ImagingStudy {
  const value = studyIdentifierValue(studyUid);
  if (study.identifier?.some((i) => i.system === DICOM_UID_SYSTEM && i.value === value)) return study;
  return { ...study, identifier: [{ use: 'official', system: DICOM_UID_SYSTEM, value }, ...(study.identifier ?? [])] };
}

/**
 * Points the study (and its series) at the Endpoints as stored on the server: the write's own source's
 * (`endpointRef`), and those of the other sources holding the study (`otherRefs`, by the mapper's reference).
 */
export function withEndpoint(study: ImagingStudy, endpointRef: string, otherRefs?: Map<string, string>): ImagingStudy {
  const serverRefs = (refs: Reference[]): Reference[] =>
    [...new Set(refs.map((r) => otherRefs?.get(r.reference ?? '') ?? endpointRef))].map((reference) => ({ reference }));
  return {
    ...study,
    endpoint: otherRefs?.size ? serverRefs(study.endpoint ?? []) : [{ reference: endpointRef }],
    series: study.series?.map((s) => (s.endpoint?.length ? { ...s, endpoint: serverRefs(s.endpoint) } : s)),
  };
}

export function prepareStudy(
  write: StudyWrite,
  opts: {
    writeMode: 'conditional' | 'client-id';
    endpointRef: string;
    /** The server's Endpoint references of the other sources holding the study, by the mapper's reference. */
    otherEndpointRefs?: Map<string, string>;
    ownerTag: Coding;
    plan: Exclude<LinkPlan, { kind: 'fail' }>;
    knownVersion?: string;
  },
): PreparedStudy {
  let resource = withStudyIdentifier(
    withEndpoint(withTag(write.imagingStudy, opts.ownerTag), opts.endpointRef, opts.otherEndpointRefs),
    write.studyUid,
  );
  const { meta, ...rest } = resource;
  // The server assigns versions; a stale versionId/lastUpdated in meta would only confuse it.
  resource = { ...rest, meta: { ...meta, versionId: undefined, lastUpdated: undefined } } as ImagingStudy;
  resource = JSON.parse(JSON.stringify(resource)) as ImagingStudy; // drop the undefineds
  let url: string;
  if (opts.writeMode === 'conditional') {
    // A conditional update must not carry an id: on first write the server assigns one.
    delete resource.id;
    url = `ImagingStudy?${studyCriteria(write.studyUid)}`;
  } else {
    resource.id = write.imagingStudy.id ?? write.studyUid;
    url = `ImagingStudy/${resource.id}`;
  }
  const plan = opts.plan;
  let patient: PreparedStudy['patient'];
  if (plan.kind === 'reference') resource.subject = plan.subject;
  else {
    patient = { key: plan.key, resource: plan.patient, ifNoneExist: plan.ifNoneExist };
    resource.subject = { type: 'Patient', display: plan.display }; // reference filled in per Bundle
  }
  return {
    write,
    resource,
    url,
    ifMatch: opts.knownVersion ? `W/"${opts.knownVersion}"` : undefined,
    patient,
    note: plan.note,
  };
}

/** Number of Bundle entries these studies need (studies + distinct Patients to create). */
export function entryCount(studies: PreparedStudy[]): number {
  return studies.length + new Set(studies.flatMap((s) => (s.patient ? [s.patient.key] : []))).size;
}

export interface TransactionPlan {
  bundle: Bundle;
  /** Bundle entry index of each study, in the order given. */
  studyEntry: number[];
}

export function buildTransaction(studies: PreparedStudy[]): TransactionPlan {
  const entries: BundleEntry[] = [];
  const patientUrls = new Map<string, string>();
  for (const s of studies) {
    if (!s.patient || patientUrls.has(s.patient.key)) continue;
    const fullUrl = `urn:uuid:${randomUUID()}`;
    patientUrls.set(s.patient.key, fullUrl);
    entries.push({
      fullUrl,
      resource: s.patient.resource,
      request: { method: 'POST', url: 'Patient', ifNoneExist: s.patient.ifNoneExist },
    });
  }
  const studyEntry: number[] = [];
  for (const s of studies) {
    const resource = s.patient
      ? { ...s.resource, subject: { ...s.resource.subject, reference: patientUrls.get(s.patient.key) } }
      : s.resource;
    studyEntry.push(entries.length);
    entries.push({
      fullUrl: `urn:uuid:${randomUUID()}`,
      resource,
      request: { method: 'PUT', url: s.url, ...(s.ifMatch ? { ifMatch: s.ifMatch } : {}) },
    });
  }
  return { bundle: { resourceType: 'Bundle', type: 'transaction', entry: entries }, studyEntry };
}

/** W/"3" → 3 */
export function versionFromEtag(etag: string | undefined): string | undefined {
  return etag ? /^(?:W\/)?"?([^"]+)"?$/.exec(etag.trim())?.[1] : undefined;
}

/** Id and version of a written resource from a response entry (resource, else location/etag). */
export function writtenIdentity(
  entry: BundleEntry | undefined,
  resourceType: string,
): { id: string; versionId?: string } | undefined {
  const resource = entry?.resource;
  const location = entry?.response?.location ?? '';
  const m = new RegExp(`(?:^|/)${resourceType}/([A-Za-z0-9\\-.]{1,64})(?:/_history/([^/]+))?`).exec(location);
  const id = (resource?.resourceType === resourceType ? resource.id : undefined) ?? m?.[1];
  if (!id) return undefined;
  const versionId = resource?.meta?.versionId ?? versionFromEtag(entry?.response?.etag) ?? m?.[2];
  return { id, versionId };
}

/** Endpoint identity used for its conditional update. */
export function endpointIdentifier(
  endpoint: Endpoint,
  sourceId: string,
  system: string,
): { system: string; value: string } {
  const own = endpoint.identifier?.find((i) => i.system && i.value);
  return own ? { system: own.system!, value: own.value! } : { system, value: sourceId };
}
