/**
 * Patient linking: Patient ID (0010,0020) with Issuer of Patient ID (0010,0021) becomes an identifier
 * whose system comes from the source's configuration; ImagingStudy.subject is built from it in the
 * configured mode.
 */
import type { Identifier, Reference } from 'fhir/r4';
import { DicomReader, readString, valueOf, type DicomDataset } from '../dicomweb/dicomJson';
import { Tag } from '../dicomweb/tags';
import type { SourceConfig } from '../config/schema';
import { isDicomUid } from './ids';

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
  /** The issuer given in DICOM but not found in the configured table (it fell back to the default system). */
  unmappedIssuer?: string;
}

export function resolvePatientIdentifier(study: DicomDataset, source: Pick<SourceConfig, 'mapping'>): IssuerResolution {
  const value = valueOf(readString(study, Tag.PatientID));
  if (!value) return {};
  const cfg = source.mapping.patient;
  const issuer = valueOf(readString(study, Tag.IssuerOfPatientID));
  const configured = issuer !== undefined ? cfg.issuerSystems[issuer] : undefined;
  if (configured) return { identifier: { system: configured, value } };
  const qualified = qualifiedIssuerSystem(study);
  if (qualified) return { identifier: { system: qualified, value } };
  return { identifier: { system: cfg.defaultSystem, value }, unmappedIssuer: issuer };
}

/** The patient's identifier for linking and search, or undefined when the study has no Patient ID. */
export function patientIdentifier(
  study: DicomDataset,
  source: Pick<SourceConfig, 'mapping'>,
): PatientIdentifier | undefined {
  return resolvePatientIdentifier(study, source).identifier;
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
