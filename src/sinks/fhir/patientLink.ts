/**
 * Patient linking: which subject Reference each ImagingStudy gets, per the source's configured mode.
 * planPatientLink is pure; PatientLookup does the (cached, batched) searches the lookup mode needs.
 */
import NodeCache from 'node-cache';
import type { Patient, Reference } from 'fhir/r4';
import type { PatientFacts, PatientLinkNote, StudyWrite } from '../sink';
import type { PatientLinking } from './config';
import type { FhirHttpClient } from './http';
import { tokenParam } from './query';

export type Identifier = { system: string; value: string };

export const identifierKey = (id: Identifier) => `${id.system}|${id.value}`;

export type LinkPlan =
  /** Use this subject as is. */
  | { kind: 'reference'; subject: Reference; note: PatientLinkNote }
  /** Create the Patient conditionally in the same transaction and reference it by its entry. */
  | { kind: 'create'; key: string; patient: Patient; ifNoneExist: string; display?: string; note: PatientLinkNote }
  | { kind: 'fail'; reason: string; retryable: boolean };

/** The patient's identifier: from the facts, else from the mapped subject's logical reference. */
export function patientIdentifier(write: StudyWrite): Identifier | undefined {
  if (write.patient?.identifier.system && write.patient.identifier.value) return write.patient.identifier;
  const id = write.imagingStudy.subject?.identifier;
  return id?.system && id.value ? { system: id.system, value: id.value } : undefined;
}

function byIdentifier(id: Identifier, display: string | undefined, note: PatientLinkNote): LinkPlan {
  return {
    kind: 'reference',
    subject: { type: 'Patient', identifier: { system: id.system, value: id.value }, display },
    note,
  };
}

function conditional(id: Identifier, display: string | undefined, note: PatientLinkNote): LinkPlan {
  return {
    kind: 'reference',
    subject: { type: 'Patient', reference: `Patient?identifier=${tokenParam(id.system, id.value)}`, display },
    note,
  };
}

/** What Patient-twcore requires that the facts lack. */
export function missingForTwCorePatient(facts: PatientFacts | undefined): string[] {
  const missing: string[] = [];
  if (!facts?.identifier?.system || !facts.identifier.value) missing.push('identifier');
  if (!facts?.gender) missing.push('gender');
  if (!facts?.birthDate) missing.push('birthDate');
  return missing;
}

export function twCorePatient(facts: PatientFacts, profile: string, tag: { system: string; code: string }): Patient {
  return {
    resourceType: 'Patient',
    meta: { profile: [profile], tag: [tag] },
    identifier: [{ system: facts.identifier.system, value: facts.identifier.value }],
    ...(facts.name ? { name: [facts.name] } : {}),
    gender: facts.gender,
    birthDate: facts.birthDate,
  };
}

/**
 * The link for one study. `lookup` holds the ids found for each identifier key (lookup mode only).
 */
export function planPatientLink(
  write: StudyWrite,
  linking: PatientLinking,
  ownerTag: { system: string; code: string },
  lookup?: Map<string, string[]>,
): LinkPlan {
  const id = patientIdentifier(write);
  if (!id) return asMapped(write);
  const display = write.imagingStudy.subject?.display;
  const fallback = (to: 'identifier' | 'conditional' | 'fail', reason: string, retryable: boolean): LinkPlan => {
    if (to === 'fail') return { kind: 'fail', reason: `patient linking (${linking.mode}): ${reason}`, retryable };
    const note = { mode: to, fallbackReason: reason };
    return to === 'identifier' ? byIdentifier(id, display, note) : conditional(id, display, note);
  };
  switch (linking.mode) {
    case 'identifier':
      return byIdentifier(id, display, { mode: 'identifier' });
    case 'conditional':
      return conditional(id, display, { mode: 'conditional' });
    case 'lookup':
      return lookedUp(lookup?.get(identifierKey(id)) ?? [], display, linking, fallback);
    case 'create':
      return created(write, id, { display, linking, ownerTag, fallback });
  }
}

type Fallback = (to: 'identifier' | 'conditional' | 'fail', reason: string, retryable: boolean) => LinkPlan;

/** Nothing to link by: keep what the mapper wrote (e.g. a display-only subject). */
function asMapped(write: StudyWrite): LinkPlan {
  if (!write.imagingStudy.subject)
    return { kind: 'fail', reason: 'no patient identifier and no mapped subject', retryable: false };
  return {
    kind: 'reference',
    subject: write.imagingStudy.subject,
    note: { mode: 'as-mapped', fallbackReason: 'no patient identifier in the DICOM data' },
  };
}

/** `lookup` mode: the one Patient found, or the configured fallback for none or several. */
function lookedUp(ids: string[], display: string | undefined, linking: PatientLinking, fallback: Fallback): LinkPlan {
  if (ids.length === 1)
    return {
      kind: 'reference',
      subject: { type: 'Patient', reference: `Patient/${ids[0]}`, display },
      note: { mode: 'lookup' },
    };
  // A missing Patient may be registered later, and duplicates merged: both worth retrying.
  if (ids.length === 0) return fallback(linking.onNone, 'no Patient has this identifier', true);
  return fallback(linking.onMultiple, `${ids.length} Patients have this identifier`, true);
}

/** `create` mode: a conditional create of a TW Core Patient, or the fallback when the DICOM data lacks what
 * it needs. */
function created(
  write: StudyWrite,
  id: Identifier,
  o: {
    display: string | undefined;
    linking: PatientLinking;
    ownerTag: { system: string; code: string };
    fallback: Fallback;
  },
): LinkPlan {
  const missing = missingForTwCorePatient(write.patient ?? { identifier: id });
  if (missing.length)
    return o.fallback(
      o.linking.fallback,
      `Patient-twcore needs ${missing.join(', ')}, absent from the DICOM data`,
      false,
    );
  return {
    kind: 'create',
    key: identifierKey(id),
    patient: twCorePatient(write.patient!, o.linking.patientProfile, o.ownerTag),
    ifNoneExist: `identifier=${tokenParam(id.system, id.value)}`,
    display: o.display,
    note: { mode: 'create' },
  };
}

/**
 * Patient ids by identifier, searched in groups (one request for many identifiers, OR-ed with
 * commas) and cached. Only single matches are cached: none/several may change soon.
 */
export class PatientLookup {
  private readonly cache: NodeCache;
  constructor(
    private readonly http: FhirHttpClient,
    ttlSeconds: number,
    private readonly perRequest = 20,
  ) {
    this.cache = new NodeCache({ stdTTL: ttlSeconds, useClones: false });
  }

  async resolve(identifiers: Identifier[]): Promise<Map<string, string[]>> {
    const result = new Map<string, string[]>();
    const misses = new Map<string, Identifier>();
    for (const id of identifiers) {
      const key = identifierKey(id);
      const hit = this.cache.get<string>(key);
      if (hit) result.set(key, [hit]);
      else misses.set(key, id);
    }
    const pending = [...misses.values()];
    for (let i = 0; i < pending.length; i += this.perRequest) {
      const group = pending.slice(i, i + this.perRequest);
      for (const id of group) result.set(identifierKey(id), []);
      const query = group.map((id) => tokenParam(id.system, id.value)).join(',');
      const res = await this.http.send<{ entry?: Array<{ resource?: Patient }> }>({
        kind: 'lookup',
        method: 'GET',
        url: `Patient?identifier=${query}&_count=${Math.max(100, group.length * 3)}`,
      });
      for (const entry of res.data.entry ?? []) {
        const patient = entry.resource;
        if (patient?.resourceType !== 'Patient' || !patient.id) continue;
        for (const pid of patient.identifier ?? []) {
          const key = `${pid.system}|${pid.value}`;
          const ids = result.get(key);
          if (misses.has(key) && ids && !ids.includes(patient.id)) ids.push(patient.id);
        }
      }
      for (const id of group) {
        const ids = result.get(identifierKey(id))!;
        if (ids.length === 1) this.cache.set(identifierKey(id), ids[0]);
      }
    }
    return result;
  }
}
