/**
 * Patient facts from a study's DICOM attributes, for StudyWrite.patient (used by the lookup and
 * create linking modes). Pure; the sync calls it with the QIDO-RS study dataset.
 */
import type { HumanName } from 'fhir/r4';
import { DicomReader, type DicomDataset } from '../../dicomweb/dicomJson';
import { Tag } from '../../dicomweb/tags';
import type { PatientFacts } from '../sink';

const SEX: Record<string, PatientFacts['gender']> = { M: 'male', F: 'female', O: 'other' };

/** DICOM PN "Family^Given^Middle^Prefix^Suffix" → HumanName (official use). */
export function humanName(pn: string): HumanName | undefined {
  const [family, given, middle, prefix, suffix] = pn.split('^').map((s) => s.trim());
  const name: HumanName = { use: 'official', text: pn.replace(/\^+/g, ' ').trim() };
  if (family) name.family = family;
  const givens = [given, middle].filter((s): s is string => Boolean(s));
  if (givens.length) name.given = givens;
  if (prefix) name.prefix = [prefix];
  if (suffix) name.suffix = [suffix];
  return name.text ? name : undefined;
}

/**
 * Facts from Patient ID (with the system chosen for Issuer of Patient ID), Patient's Sex, Birth
 * Date and Name. Undefined when there is no Patient ID.
 */
export function patientFactsFromDicom(
  study: DicomDataset,
  systems: { defaultSystem: string; issuerSystems?: Record<string, string>; nameGroup?: 'alphabetic' | 'ideographic' },
): PatientFacts | undefined {
  const r = new DicomReader(study);
  const value = r.string(Tag.PatientID);
  if (!value) return undefined;
  const issuer = r.string(Tag.IssuerOfPatientID);
  const system = (issuer && systems.issuerSystems?.[issuer]) || systems.defaultSystem;
  const facts: PatientFacts = { identifier: { system, value } };
  const sex = r.string(Tag.PatientSex)?.toUpperCase();
  if (sex && SEX[sex]) facts.gender = SEX[sex];
  const birth = r.date(Tag.PatientBirthDate);
  if (birth) facts.birthDate = `${String(birth.year).padStart(4, '0')}-${String(birth.month).padStart(2, '0')}-${String(birth.day).padStart(2, '0')}`;
  const pn = r.personName(Tag.PatientName);
  const chosen = systems.nameGroup === 'ideographic' ? pn?.Ideographic ?? pn?.Alphabetic : pn?.Alphabetic ?? pn?.Ideographic;
  const name = chosen ? humanName(chosen) : undefined;
  if (name) facts.name = name;
  return facts;
}
