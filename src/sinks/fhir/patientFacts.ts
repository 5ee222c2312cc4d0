/**
 * Patient facts for StudyWrite.patient (used by the lookup and create linking modes). Built in
 * src/mapping (patient.ts, names.ts) so Patient.name and ImagingStudy.subject.display never disagree.
 */
export { patientFacts as patientFactsFromDicom } from '../../mapping/patient';
export { humanName } from '../../mapping/names';
