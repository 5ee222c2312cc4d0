/**
 * FHIR code systems the mapper writes, and the translation of DICOM Coding Scheme Designators
 * (PS3.16 Table 8-1) into FHIR system URIs.
 */

export const SYSTEM = {
  dicomUid: 'urn:dicom:uid',
  rfc3986: 'urn:ietf:rfc:3986',
  dcm: 'http://dicom.nema.org/resources/ontology/DCM',
  snomed: 'http://snomed.info/sct',
  v2_0203: 'http://terminology.hl7.org/CodeSystem/v2-0203',
  participationType: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType',
  endpointConnectionType: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type',
  /** TW Core's RadLex slice (the RadLex Playbook RPID codes); the R4 examples use the same URI. */
  radlex: 'http://www.radlex.org',
  /** TW Core's ICD-10-PCS 2023 (Taiwan NHI Chinese edition) slice. */
  icd10pcs2023: 'https://twcore.mohw.gov.tw/ig/twcore/CodeSystem/icd-10-pcs-2023-tw',
} as const;

export const TWCORE_IMAGING_STUDY_PROFILE =
  'https://twcore.mohw.gov.tw/ig/twcore/StructureDefinition/ImagingStudy-twcore';

/** Designators with a well-known FHIR system URI. Keys are upper case. */
const KNOWN_SCHEMES: Readonly<Record<string, string>> = {
  RADLEX: SYSTEM.radlex,
  I10P: SYSTEM.icd10pcs2023,
  ICD10PCS: SYSTEM.icd10pcs2023,
  'ICD-10-PCS': SYSTEM.icd10pcs2023,
  SCT: SYSTEM.snomed,
  SNOMED: SYSTEM.snomed,
  LN: 'http://loinc.org',
  LOINC: 'http://loinc.org',
  DCM: SYSTEM.dcm,
  C4: 'http://www.ama-assn.org/go/cpt',
  C5: 'http://www.ama-assn.org/go/cpt',
  CPT: 'http://www.ama-assn.org/go/cpt',
  I10: 'http://hl7.org/fhir/sid/icd-10',
  I10C: 'http://hl7.org/fhir/sid/icd-10-cm',
  I9C: 'http://hl7.org/fhir/sid/icd-9-cm',
  UCUM: 'http://unitsofmeasure.org',
  NCIT: 'http://ncit.nci.nih.gov',
  UMLS: 'http://www.nlm.nih.gov/research/umls',
  RXNORM: 'http://www.nlm.nih.gov/research/umls/rxnorm',
};

/** Prefix of the stable system minted for designators without a known URI (local "99…" schemes, SRT, …). */
export const DICOM_SCHEME_URN_PREFIX = 'urn:dicom:coding-scheme:';

/** The FHIR system for a DICOM Coding Scheme Designator; undefined when there is no designator. */
export function systemForScheme(designator: string | undefined): string | undefined {
  if (!designator) return undefined;
  const known = KNOWN_SCHEMES[designator.toUpperCase()];
  return known ?? DICOM_SCHEME_URN_PREFIX + encodeURIComponent(designator);
}
