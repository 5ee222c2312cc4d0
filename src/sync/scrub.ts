/**
 * Error texts come from outside (a FHIR server's OperationOutcome, a PACS's answer) and may quote the
 * patient. Before such a text is stored or logged, the study's own patient name, ID and birth date are
 * cut out of it: the status page, the store and the logs must never carry them.
 */
import { readDate, readPersonName, readString, valueOf, type DicomDataset, Tag } from '../dicom';

const REDACTED = '[redacted]';

/** The patient values of a study that must not appear in a message, longest first. */
export function patientValues(ds: DicomDataset): string[] {
  const values = new Set<string>();
  const id = valueOf(readString(ds, Tag.PatientID));
  if (id) values.add(id);
  const name = valueOf(readPersonName(ds, Tag.PatientName));
  for (const group of [name?.Alphabetic, name?.Ideographic, name?.Phonetic]) {
    if (!group) continue;
    values.add(group);
    // Servers echo names in other shapes ("Doe, John", "陳大文"): each component alone is cut too.
    for (const part of group.split(/[\^=\s,]+/)) if (part.length >= 2 || /[^\x00-\x7f]/.test(part)) values.add(part);
    values.add(group.replace(/[\^\s]+/g, ''));
  }
  const birth = valueOf(readDate(ds, Tag.PatientBirthDate));
  if (birth) {
    const [y, m, d] = [
      String(birth.year).padStart(4, '0'),
      String(birth.month).padStart(2, '0'),
      String(birth.day).padStart(2, '0'),
    ];
    values.add(`${y}${m}${d}`);
    values.add(`${y}-${m}-${d}`);
  }
  return [...values].filter(Boolean).sort((a, b) => b.length - a.length);
}

export function scrubPatientData(text: string, ds: DicomDataset): string {
  let out = text;
  for (const value of patientValues(ds)) out = out.split(value).join(REDACTED);
  return out;
}
