/** DICOM coded entries and code strings → FHIR Coding / CodeableConcept. */
import type { CodeableConcept, Coding } from 'fhir/r4';
import type { CodedEntry } from '../dicom';
import { MODALITY_MEANINGS } from './terminology/modalities';
import { SYSTEM, systemForScheme } from './terminology/codeSystems';

/** FHIR `code` allows single inner spaces only; DICOM values may carry runs of whitespace. */
export function asCode(s: string): string {
  return s.trim().replace(/\s+/g, ' ');
}

/** One Code Sequence item → a CodeableConcept with at most one coding (TW Core's open procedureCode slices). */
export function codeableConcept(entry: CodedEntry): CodeableConcept | undefined {
  const concept: CodeableConcept = {};
  if (entry.code) {
    const coding: Coding = {};
    const system = systemForScheme(entry.scheme);
    if (system) coding.system = system;
    coding.code = asCode(entry.code);
    if (entry.meaning) coding.display = entry.meaning;
    concept.coding = [coding];
  }
  if (entry.meaning) concept.text = entry.meaning;
  return concept.coding || concept.text ? concept : undefined;
}

/** A DICOM modality as a DCM coding, with the CID 29/33 meaning as display when known. */
export function modalityCoding(modality: string): Coding {
  const code = asCode(modality).toUpperCase();
  const display = MODALITY_MEANINGS[code];
  return display ? { system: SYSTEM.dcm, code, display } : { system: SYSTEM.dcm, code };
}
