/**
 * The one table of DICOM attributes the bridge reads from QIDO-RS results, per level: what the mapper,
 * the patient facts and the Study UID conflict check read. src/dicomweb derives `includefield` from it, the
 * fingerprint covers its study level, and WADO-RS enrichment fills its `enrich` entries. A unit test
 * (test/unit/mapping/attributes.test.ts) records every tag they read and compares it with this
 * table, so an attribute read but not listed (hence never asked for) fails the build.
 *
 * Data only, importing nothing but the tag list. It lives in src/dicom, the data model below both src/dicomweb
 * (which asks the PACS for these attributes) and src/mapping (which reads them), so neither imports the other.
 * Specific Character Set (0008,0005) is deliberately absent: DICOM JSON is always UTF-8, and Orthanc 1.10
 * answers 400 to a query that asks for it when a study is in an ISO 2022 character set.
 */
import { Tag } from './tags';

export type AttributeLevel = 'study' | 'series' | 'instance';

export interface MappedAttribute {
  tag: string;
  /**
   * Filled from one instance's WADO-RS metadata when the QIDO row lacks it (a source's
   * `enrichment.wadoMetadata`): sequences and names many QIDO servers (Orthanc) do not return.
   */
  enrich?: true;
}

const a = (tag: string, enrich?: true): MappedAttribute => (enrich ? { tag, enrich } : { tag });

export const MAPPED_ATTRIBUTES: Readonly<Record<AttributeLevel, readonly MappedAttribute[]>> = {
  study: [
    a(Tag.StudyInstanceUID),
    a(Tag.StudyDate),
    a(Tag.StudyTime),
    a(Tag.TimezoneOffsetFromUTC),
    a(Tag.StudyDescription),
    a(Tag.StudyID),
    a(Tag.AccessionNumber),
    a(Tag.IssuerOfAccessionNumberSequence, true),
    a(Tag.ModalitiesInStudy),
    a(Tag.NumberOfStudyRelatedSeries),
    a(Tag.NumberOfStudyRelatedInstances),
    a(Tag.ReferringPhysicianName, true),
    a(Tag.NameOfPhysiciansReadingStudy),
    a(Tag.ProcedureCodeSequence, true),
    a(Tag.ReasonForRequestedProcedure),
    a(Tag.ReasonForRequestedProcedureCodeSequence, true),
    a(Tag.InstitutionalDepartmentName),
    a(Tag.PatientName),
    a(Tag.PatientID),
    a(Tag.IssuerOfPatientID),
    a(Tag.IssuerOfPatientIDQualifiersSequence),
    // Read by the patient facts the FHIR sink links or creates Patients with.
    a(Tag.PatientBirthDate),
    a(Tag.PatientSex),
  ],
  series: [
    // Batched queries span several studies: each series must say which study it belongs to.
    a(Tag.StudyInstanceUID),
    a(Tag.SeriesInstanceUID),
    a(Tag.SeriesNumber),
    a(Tag.Modality),
    a(Tag.SeriesDescription),
    a(Tag.SeriesDate),
    a(Tag.SeriesTime),
    a(Tag.TimezoneOffsetFromUTC),
    a(Tag.BodyPartExamined),
    a(Tag.Laterality),
    a(Tag.ImageLaterality),
    a(Tag.PerformingPhysicianName, true),
    a(Tag.OperatorsName),
    a(Tag.NumberOfSeriesRelatedInstances),
    // Read by the Study UID conflict check (conflicts.ts): series of one study under two patients.
    a(Tag.PatientID),
    a(Tag.IssuerOfPatientID),
  ],
  instance: [
    a(Tag.StudyInstanceUID),
    a(Tag.SeriesInstanceUID),
    a(Tag.SOPClassUID),
    a(Tag.SOPInstanceUID),
    a(Tag.InstanceNumber),
    a(Tag.ContentLabel),
    a(Tag.ConceptNameCodeSequence),
    a(Tag.DocumentTitle),
    a(Tag.ImageType),
    a(Tag.ImageLaterality),
    // Read by the Study UID conflict check (conflicts.ts).
    a(Tag.PatientID),
    a(Tag.IssuerOfPatientID),
  ],
};

/** The tags read at one level, in table order. */
export function attributesOf(level: AttributeLevel): string[] {
  return MAPPED_ATTRIBUTES[level].map((x) => x.tag);
}

/** The tags at one level that WADO-RS metadata may fill in. */
export function enrichableAttributesOf(level: AttributeLevel): string[] {
  return MAPPED_ATTRIBUTES[level].filter((x) => x.enrich).map((x) => x.tag);
}
