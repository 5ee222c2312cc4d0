/**
 * Patient identity and facts: Patient ID (0010,0020) with Issuer of Patient ID (0010,0021) becomes an
 * identifier whose system never lets two issuers share one patient; ImagingStudy.subject is built from
 * it in the configured mode, and the FHIR sink's Patient facts (name, sex, birth date) come from here too.
 */
import type { HumanName, Identifier, Reference } from 'fhir/r4';
import { DicomReader, readString, valueOf, type DicomDataset, Tag } from '../dicom';
import type { SourceConfig } from '../config';
import { formatDate, isFhirYear } from './datetime';
import { isDicomUid } from './ids';
import { personHumanName } from './names';

export interface PatientIdentifier {
  system: string;
  value: string;
}

/** The issuer's system from Issuer of Patient ID Qualifiers Sequence (0010,0024), when universal. */
function qualifiedIssuerSystem(study: DicomDataset): string | undefined {
  const items = new DicomReader(study).sequence(Tag.IssuerOfPatientIDQualifiersSequence);
  const item = items?.[0];
  return item ? universalEntitySystem(item) : undefined;
}

/**
 * A system URI from Universal Entity ID (0040,0032) and its type (0040,0033):
 * ISO → urn:oid, UUID → urn:uuid, URI as is.
 */
export function universalEntitySystem(item: DicomDataset): string | undefined {
  const id = valueOf(readString(item, Tag.UniversalEntityID));
  const type = valueOf(readString(item, Tag.UniversalEntityIDType))?.toUpperCase();
  if (!id) return undefined;
  if (type === 'ISO' && isDicomUid(id)) return `urn:oid:${id}`;
  if (type === 'UUID' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id))
    return `urn:uuid:${id.toLowerCase()}`;
  if ((type === 'URI' || type === 'URL') && /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(id)) return id;
  return undefined;
}

export interface IssuerResolution {
  identifier?: PatientIdentifier;
  /** The issuer given in DICOM but not found in the configured table (it got its own per-issuer system). */
  unmappedIssuer?: string;
}

/** RFC 3986 percent-encoding that leaves only unreserved characters, so any issuer fits one URN segment. */
function uriSegment(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The system for an Issuer of Patient ID the configuration does not map: one per source and issuer,
 * `urn:pacs-fhir-bridge:<sourceId>:issuer:<percent-encoded issuer>:patient-id`, so two issuers (or one
 * issuer name on two PACS) never share a patient. Map the issuer in issuerSystems to join it to a real system.
 */
export function unmappedIssuerSystem(sourceId: string, issuer: string): string {
  return `urn:pacs-fhir-bridge:${uriSegment(sourceId)}:issuer:${uriSegment(issuer)}:patient-id`;
}

/**
 * The system of a source's Patient IDs without an issuer when `mapping.patient.defaultSystem` is not set:
 * `urn:pacs-fhir-bridge:<sourceId>:patient-id`, one per source, so Patient ID 12345 at two hospitals is never
 * one patient. Sources that really share one ID space (a PACS and its VNA) configure the same defaultSystem.
 */
export function builtInPatientSystem(sourceId: string): string {
  return `urn:pacs-fhir-bridge:${uriSegment(sourceId)}:patient-id`;
}

/** Whether the source's Patient IDs without an issuer are in the bridge's own system (no defaultSystem set). */
export function usesBuiltInPatientSystem(source: Pick<SourceConfig, 'mapping'>): boolean {
  return source.mapping.patient.defaultSystem === undefined;
}

/** The system for Patient IDs without an issuer: the configured defaultSystem, else the source's own. */
export function defaultPatientSystem(source: Pick<SourceConfig, 'id' | 'mapping'>): string {
  return source.mapping.patient.defaultSystem ?? builtInPatientSystem(source.id);
}

/**
 * The identifier system: the configured system for the issuer, else the universal ID of the issuer
 * qualifiers (0010,0024), else a per-source per-issuer URN when an issuer is given, else the source's
 * defaultSystem (no issuer at all).
 */
export function resolvePatientIdentifier(
  study: DicomDataset,
  source: Pick<SourceConfig, 'id' | 'mapping'>,
): IssuerResolution {
  const value = valueOf(readString(study, Tag.PatientID));
  if (!value) return {};
  const cfg = source.mapping.patient;
  const issuer = valueOf(readString(study, Tag.IssuerOfPatientID));
  const configured = issuer !== undefined ? cfg.issuerSystems[issuer] : undefined;
  if (configured) return { identifier: { system: configured, value } };
  const qualified = qualifiedIssuerSystem(study);
  if (qualified) return { identifier: { system: qualified, value } };
  if (issuer !== undefined)
    return { identifier: { system: unmappedIssuerSystem(source.id, issuer), value }, unmappedIssuer: issuer };
  return { identifier: { system: defaultPatientSystem(source), value } };
}

/** The patient's identifier for linking and search, or undefined when the study has no Patient ID. */
export function patientIdentifier(
  study: DicomDataset,
  source: Pick<SourceConfig, 'id' | 'mapping'>,
): PatientIdentifier | undefined {
  return resolvePatientIdentifier(study, source).identifier;
}

/** What the DICOM data says about the patient, for sinks that link or create Patients. */
export interface PatientFacts {
  /** Patient ID (0010,0020) with the system chosen for its issuer. */
  identifier: PatientIdentifier;
  /** Built by names.ts, so name.text equals ImagingStudy.subject.display. */
  name?: HumanName;
  gender?: 'male' | 'female' | 'other' | 'unknown';
  /** FHIR date (YYYY-MM-DD). */
  birthDate?: string;
}

const SEX: Record<string, PatientFacts['gender']> = { M: 'male', F: 'female', O: 'other' };

/**
 * Patient ID with the same system the mapper gives ImagingStudy.subject, Patient's Sex, Birth Date and
 * Name (the configured component group, as the subject's display). Undefined when there is no Patient ID.
 */
export function patientFacts(
  study: DicomDataset,
  source: Pick<SourceConfig, 'id' | 'mapping'>,
): PatientFacts | undefined {
  const identifier = patientIdentifier(study, source);
  if (!identifier) return undefined;
  const r = new DicomReader(study);
  const facts: PatientFacts = { identifier: { system: identifier.system, value: identifier.value } };
  const sex = r.string(Tag.PatientSex)?.toUpperCase();
  if (sex && SEX[sex]) facts.gender = SEX[sex];
  const birth = r.date(Tag.PatientBirthDate);
  if (birth && isFhirYear(birth)) facts.birthDate = formatDate(birth);
  const name = personHumanName(r.personName(Tag.PatientName), source.mapping.patient.nameGroup);
  if (name) facts.name = name;
  return facts;
}

/** FHIR search escaping (\ | , $) plus URL encoding of what a query string cannot carry. */
export function searchTokenPart(s: string): string {
  const escaped = s.replace(/[\\|,$]/g, (c) => `\\${c}`);
  return encodeURIComponent(escaped)
    .replace(/%3A/gi, ':')
    .replace(/%2F/gi, '/')
    .replace(/%5C/gi, '\\')
    .replace(/%2C/gi, ',')
    .replace(/%24/gi, '$')
    .replace(/%7C/gi, '|');
}

/** Patient?identifier=system|value, for conditional references in transactions. */
export function conditionalPatientReference(id: PatientIdentifier): string {
  return `Patient?identifier=${searchTokenPart(id.system)}|${searchTokenPart(id.value)}`;
}

export function subjectReference(
  identifier: PatientIdentifier | undefined,
  display: string | undefined,
  mode: SourceConfig['mapping']['patient']['mode'],
  resolved: string | undefined,
): Reference {
  const ref: Reference = {};
  if (resolved) ref.reference = resolved;
  else if (mode === 'conditional' && identifier) ref.reference = conditionalPatientReference(identifier);
  ref.type = 'Patient';
  if (identifier) ref.identifier = { system: identifier.system, value: identifier.value } satisfies Identifier;
  if (display) ref.display = display;
  return ref;
}
