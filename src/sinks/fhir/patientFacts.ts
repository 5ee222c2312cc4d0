/**
 * Patient facts from a study's DICOM attributes, for StudyWrite.patient (used by the lookup and
 * create linking modes). Pure; the sync calls it with the QIDO-RS study dataset.
 */
import type { HumanName } from 'fhir/r4';
import { DicomReader, type DicomDataset } from '../../dicomweb/dicomJson';
import { Tag } from '../../dicomweb/tags';
import type { SourceConfig } from '../../config/schema';
import { patientIdentifier } from '../../mapping/patient';
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
 * Facts from Patient ID (with the same identifier system the mapper gives ImagingStudy.subject),
 * Patient's Sex, Birth Date and Name. Undefined when there is no Patient ID.
 */
export function patientFactsFromDicom(
  study: DicomDataset,
  source: Pick<SourceConfig, 'mapping'>,
): PatientFacts | undefined {
  const identifier = patientIdentifier(study, source as SourceConfig);
  if (!identifier) return undefined;
  const r = new DicomReader(study);
  const facts: PatientFacts = { identifier: { system: identifier.system, value: identifier.value } };
  const sex = r.string(Tag.PatientSex)?.toUpperCase();
  if (sex && SEX[sex]) facts.gender = SEX[sex];
  const birth = r.date(Tag.PatientBirthDate);
  if (birth)
    facts.birthDate = `${String(birth.year).padStart(4, '0')}-${String(birth.month).padStart(2, '0')}-${String(birth.day).padStart(2, '0')}`;
  const pn = r.personName(Tag.PatientName);
  const chosen =
    source.mapping.patient.nameGroup === 'ideographic'
      ? (pn?.Ideographic ?? pn?.Alphabetic)
      : (pn?.Alphabetic ?? pn?.Ideographic);
  const name = chosen ? humanName(chosen) : undefined;
  if (name) facts.name = name;
  return facts;
}
