/**
 * Synthetic studies (test/fixtures/synthetic.ts) as the DICOM JSON rows a DICOMweb PACS answers with, for the
 * in-memory PACS (memoryPacs.ts). The rows follow what Orthanc's DICOMweb plugin returns for the bridge's
 * include fields, checked by test/integration/dicomweb/pacsSourceContract.test.ts:
 * - QIDO rows carry the plain attributes the fixture has, absent when the fixture lacks them, and no sequences
 *   (Orthanc leaves sequences out of QIDO answers; WADO-RS metadata has them, see `instanceMetadata`);
 * - study rows add the computed ModalitiesInStudy (sorted) and counts; series rows their instance count, the
 *   study's time zone offset and patient; IS values are JSON numbers.
 */
import { Tag, type DicomAttribute, type DicomDataset } from '../../src/dicom';
import {
  patientNameValue,
  type SyntheticCode,
  type SyntheticInstance,
  type SyntheticSeries,
  type SyntheticStudy,
} from '../fixtures/synthetic';

type Entry = [tag: string, attribute: DicomAttribute | undefined];

const text = (vr: string, value: string | undefined): DicomAttribute | undefined =>
  value === undefined ? undefined : { vr, Value: [value] };
const texts = (vr: string, values: readonly string[] | undefined): DicomAttribute | undefined =>
  values === undefined ? undefined : { vr, Value: [...values] };
const integer = (value: number | undefined): DicomAttribute | undefined =>
  value === undefined ? undefined : { vr: 'IS', Value: [value] };
const sequence = (items: DicomDataset[] | undefined): DicomAttribute | undefined =>
  items === undefined ? undefined : { vr: 'SQ', Value: items };

/**
 * A PN string as written to the fixture files ("Alphabetic=Ideographic=Phonetic") as one DICOM JSON name. Groups
 * before the last one written stay, even empty: Orthanc answers "=陳^大文" with an empty Alphabetic group.
 */
function personName(pn: string | undefined): DicomAttribute | undefined {
  if (pn === undefined) return undefined;
  const groups = pn.split('=');
  while (groups.length && groups.at(-1) === '') groups.pop();
  const keys = ['Alphabetic', 'Ideographic', 'Phonetic'] as const;
  return { vr: 'PN', Value: [Object.fromEntries(groups.map((g, i) => [keys[i], g]))] };
}

/** The entries that are present, as one dataset. */
function dataset(entries: Entry[]): DicomDataset {
  const out: DicomDataset = {};
  for (const [tag, attribute] of entries) if (attribute) out[tag] = attribute;
  return out;
}

function codeItem(c: SyntheticCode): DicomDataset {
  return dataset([
    [Tag.CodeValue, text('SH', c.code)],
    [Tag.CodingSchemeDesignator, text('SH', c.scheme)],
    [Tag.CodeMeaning, text('LO', c.meaning)],
  ]);
}

/** Patient attributes as every level of a QIDO answer carries them (the ID and issuer the conflict check reads). */
function patientKeys(study: SyntheticStudy): Entry[] {
  return [
    [Tag.PatientID, text('LO', study.patient.id)],
    [Tag.IssuerOfPatientID, text('LO', study.patient.issuer)],
  ];
}

/** The study-level attributes a study's files hold (no computed ones, no sequences). */
function studyAttributes(study: SyntheticStudy): Entry[] {
  const p = study.patient;
  return [
    [Tag.SpecificCharacterSet, text('CS', 'ISO_IR 192')],
    [Tag.StudyDate, text('DA', study.studyDate)],
    [Tag.StudyTime, text('TM', study.studyTime)],
    [Tag.AccessionNumber, text('SH', study.accession)],
    [Tag.ReferringPhysicianName, personName(study.referrer)],
    [Tag.TimezoneOffsetFromUTC, text('SH', study.tzOffset)],
    [Tag.StudyDescription, text('LO', study.description)],
    [Tag.InstitutionalDepartmentName, text('LO', study.department)],
    [Tag.NameOfPhysiciansReadingStudy, personName(study.readingPhysician)],
    [Tag.PatientName, personName(patientNameValue(p))],
    ...patientKeys(study),
    [Tag.PatientBirthDate, text('DA', p.birthDate)],
    [Tag.PatientSex, text('CS', p.sex)],
    [Tag.StudyInstanceUID, text('UI', study.studyUid)],
    [Tag.StudyID, text('SH', study.studyId)],
    [Tag.ReasonForRequestedProcedure, text('LO', study.reason)],
  ];
}

/** The sequences Orthanc leaves out of QIDO rows but gives in WADO-RS metadata. */
function studySequences(study: SyntheticStudy): Entry[] {
  const q = study.patient.issuerQualifier;
  return [
    [
      Tag.IssuerOfAccessionNumberSequence,
      sequence(
        study.accessionIssuer === undefined
          ? undefined
          : [dataset([[Tag.LocalNamespaceEntityID, text('UT', study.accessionIssuer)]])],
      ),
    ],
    [Tag.ProcedureCodeSequence, sequence(study.procedureCode && [codeItem(study.procedureCode)])],
    [Tag.ReasonForRequestedProcedureCodeSequence, sequence(study.reasonCode && [codeItem(study.reasonCode)])],
    [
      Tag.IssuerOfPatientIDQualifiersSequence,
      sequence(
        q && [
          dataset([
            [Tag.UniversalEntityID, text('UT', q.universalEntityId)],
            [Tag.UniversalEntityIDType, text('CS', q.type)],
          ]),
        ],
      ),
    ],
  ];
}

/**
 * One QIDO study row for the studies a PACS keeps as one (same Study UID and Patient ID: Orthanc keys a study
 * by both). The first study gives the study attributes; modalities and counts cover every series of all of them.
 */
export function studyRow(parts: readonly SyntheticStudy[]): DicomDataset {
  const series = parts.flatMap((p) => p.series);
  const modalities = [...new Set(series.map((s) => s.modality).filter((m) => m !== undefined))].sort();
  return dataset([
    ...studyAttributes(parts[0]!),
    [Tag.ModalitiesInStudy, modalities.length ? texts('CS', modalities) : undefined],
    [Tag.NumberOfStudyRelatedSeries, integer(series.length)],
    [Tag.NumberOfStudyRelatedInstances, integer(series.reduce((n, s) => n + s.instances.length, 0))],
  ]);
}

function seriesAttributes(s: SyntheticSeries): Entry[] {
  return [
    [Tag.SeriesInstanceUID, text('UI', s.seriesUid)],
    [Tag.SeriesNumber, integer(s.number)],
    [Tag.Modality, text('CS', s.modality)],
    [Tag.SeriesDescription, text('LO', s.description)],
    [Tag.SeriesDate, text('DA', s.seriesDate)],
    [Tag.SeriesTime, text('TM', s.seriesTime)],
    [Tag.BodyPartExamined, text('CS', s.bodyPart)],
    [Tag.Laterality, text('CS', s.laterality)],
    [Tag.PerformingPhysicianName, personName(s.performer)],
    [Tag.OperatorsName, personName(s.operator)],
  ];
}

/** A QIDO series row: the series, the study it is in, its patient, and how many instances it holds. */
export function seriesRow(study: SyntheticStudy, s: SyntheticSeries): DicomDataset {
  return dataset([
    [Tag.SpecificCharacterSet, text('CS', 'ISO_IR 192')],
    [Tag.StudyInstanceUID, text('UI', study.studyUid)],
    [Tag.TimezoneOffsetFromUTC, text('SH', study.tzOffset)],
    ...patientKeys(study),
    ...seriesAttributes(s),
    [Tag.NumberOfSeriesRelatedInstances, integer(s.instances.length)],
  ]);
}

function instanceAttributes(i: SyntheticInstance): Entry[] {
  return [
    [Tag.SOPClassUID, text('UI', i.sopClassUid)],
    [Tag.SOPInstanceUID, text('UI', i.sopInstanceUid)],
    [Tag.InstanceNumber, integer(i.number)],
    [Tag.ImageType, texts('CS', i.imageType)],
    [Tag.ContentLabel, text('CS', i.contentLabel)],
  ];
}

/** A QIDO instance row: the instance with its study, series and patient keys (no document title sequence). */
export function instanceRow(study: SyntheticStudy, s: SyntheticSeries, i: SyntheticInstance): DicomDataset {
  return dataset([
    [Tag.SpecificCharacterSet, text('CS', 'ISO_IR 192')],
    [Tag.StudyInstanceUID, text('UI', study.studyUid)],
    [Tag.SeriesInstanceUID, text('UI', s.seriesUid)],
    [Tag.Modality, text('CS', s.modality)],
    ...patientKeys(study),
    ...instanceAttributes(i),
  ]);
}

/** One instance's full header as WADO-RS metadata gives it: every attribute of its file, sequences included. */
export function instanceMetadata(study: SyntheticStudy, s: SyntheticSeries, i: SyntheticInstance): DicomDataset {
  return dataset([
    ...studyAttributes(study),
    ...studySequences(study),
    ...seriesAttributes(s),
    ...instanceAttributes(i),
    [Tag.ConceptNameCodeSequence, sequence(i.documentTitle && [codeItem(i.documentTitle)])],
  ]);
}
