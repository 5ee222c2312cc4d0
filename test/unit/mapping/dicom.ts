/** Small builders for DICOM JSON (PS3.18 Annex F) used by the mapping tests. */
import type { DicomAttribute, DicomDataset } from '../../../src/dicom/dicomJson';
import { Tag } from '../../../src/dicom/tags';
import { sourceSchema, type SourceConfig, type SourceInput } from '../../../src/config/schema';

export const s = (vr: string, ...values: (string | null)[]): DicomAttribute => ({ vr, Value: values });
export const n = (vr: string, ...values: number[]): DicomAttribute => ({ vr, Value: values });
export const pn = (
  ...names: ({ Alphabetic?: string; Ideographic?: string; Phonetic?: string } | string)[]
): DicomAttribute => ({
  vr: 'PN',
  Value: names.map((x) => (typeof x === 'string' ? { Alphabetic: x } : x)),
});
export const sq = (...items: DicomDataset[]): DicomAttribute => ({ vr: 'SQ', Value: items });
export const code = (value: string, scheme: string, meaning?: string): DicomDataset => ({
  [Tag.CodeValue]: s('SH', value),
  [Tag.CodingSchemeDesignator]: s('SH', scheme),
  ...(meaning ? { [Tag.CodeMeaning]: s('LO', meaning) } : {}),
});

export const STUDY_UID = '1.2.826.0.1.3680043.8.498.1';

export function study(extra: DicomDataset = {}): DicomDataset {
  return {
    [Tag.StudyInstanceUID]: s('UI', STUDY_UID),
    [Tag.PatientID]: s('LO', 'A123456789'),
    [Tag.PatientName]: pn({ Alphabetic: 'CHEN^TA WEN', Ideographic: '陳^大文' }),
    [Tag.StudyDate]: s('DA', '20240315'),
    [Tag.StudyTime]: s('TM', '093015'),
    [Tag.AccessionNumber]: s('SH', 'ACC001'),
    [Tag.ModalitiesInStudy]: s('CS', 'CT'),
    [Tag.NumberOfStudyRelatedSeries]: n('IS', 1),
    [Tag.NumberOfStudyRelatedInstances]: n('IS', 2),
    ...extra,
  };
}

export function series(uid = `${STUDY_UID}.1`, extra: DicomDataset = {}): DicomDataset {
  return {
    [Tag.StudyInstanceUID]: s('UI', STUDY_UID),
    [Tag.SeriesInstanceUID]: s('UI', uid),
    [Tag.Modality]: s('CS', 'CT'),
    [Tag.SeriesNumber]: n('IS', 1),
    [Tag.NumberOfSeriesRelatedInstances]: n('IS', 2),
    ...extra,
  };
}

export function instance(seriesUid = `${STUDY_UID}.1`, number = 1, extra: DicomDataset = {}): DicomDataset {
  return {
    [Tag.StudyInstanceUID]: s('UI', STUDY_UID),
    [Tag.SeriesInstanceUID]: s('UI', seriesUid),
    [Tag.SOPInstanceUID]: s('UI', `${seriesUid}.${number}`),
    [Tag.SOPClassUID]: s('UI', '1.2.840.10008.5.1.4.1.1.2'),
    [Tag.InstanceNumber]: n('IS', number),
    ...extra,
  };
}

/** A one-series, two-instance CT study. */
export function basicResults(): { study: DicomDataset; series: DicomDataset[]; instances: DicomDataset[] } {
  return { study: study(), series: [series()], instances: [instance(undefined, 1), instance(undefined, 2)] };
}

export function source(input: Partial<SourceInput> = {}): SourceConfig {
  return sourceSchema.parse({ id: 'pacs1', qidoBase: 'http://pacs.test/dicom-web', ...input });
}
