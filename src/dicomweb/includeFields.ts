/**
 * The attributes asked for at each QIDO level. Never `includefield=all`: Orthanc's DICOMweb plugin
 * ignores it, and StudyDescription is not a default return attribute (PS3.18 Table 6.7.1-2).
 * The mapper reads exactly these, so this is the one place to add an attribute.
 */
import { Tag } from './tags';

export const STUDY_INCLUDE_FIELDS: readonly string[] = [
  Tag.SpecificCharacterSet,
  Tag.StudyInstanceUID,
  Tag.StudyDate,
  Tag.StudyTime,
  Tag.TimezoneOffsetFromUTC,
  Tag.StudyDescription,
  Tag.StudyID,
  Tag.AccessionNumber,
  Tag.IssuerOfAccessionNumberSequence,
  Tag.ModalitiesInStudy,
  Tag.SOPClassesInStudy,
  Tag.NumberOfStudyRelatedSeries,
  Tag.NumberOfStudyRelatedInstances,
  Tag.ReferringPhysicianName,
  Tag.NameOfPhysiciansReadingStudy,
  Tag.ProcedureCodeSequence,
  Tag.ReasonForRequestedProcedure,
  Tag.InstitutionName,
  Tag.InstitutionalDepartmentName,
  Tag.PatientName,
  Tag.PatientID,
  Tag.IssuerOfPatientID,
  Tag.PatientBirthDate,
  Tag.PatientSex,
];

export const SERIES_INCLUDE_FIELDS: readonly string[] = [
  Tag.SpecificCharacterSet,
  // Batched queries span several studies: each series must say which study it belongs to.
  Tag.StudyInstanceUID,
  Tag.SeriesInstanceUID,
  Tag.SeriesNumber,
  Tag.Modality,
  Tag.SeriesDescription,
  Tag.SeriesDate,
  Tag.SeriesTime,
  Tag.TimezoneOffsetFromUTC,
  Tag.BodyPartExamined,
  Tag.Laterality,
  Tag.PerformingPhysicianName,
  Tag.OperatorsName,
  Tag.InstitutionName,
  Tag.NumberOfSeriesRelatedInstances,
  // Read by the Study UID conflict check (src/sync/conflicts.ts): series of one study under two patients.
  Tag.PatientID,
  Tag.IssuerOfPatientID,
];

export const INSTANCE_INCLUDE_FIELDS: readonly string[] = [
  Tag.SpecificCharacterSet,
  Tag.StudyInstanceUID,
  Tag.SeriesInstanceUID,
  Tag.SOPClassUID,
  Tag.SOPInstanceUID,
  Tag.InstanceNumber,
  Tag.ContentLabel,
  Tag.ConceptNameCodeSequence,
  Tag.DocumentTitle,
  Tag.ImageType,
  Tag.ImageLaterality,
  // Read by the Study UID conflict check (src/sync/conflicts.ts).
  Tag.PatientID,
  Tag.IssuerOfPatientID,
];
