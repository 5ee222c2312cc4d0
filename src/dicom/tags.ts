/**
 * The DICOM attributes the bridge reads, by keyword (PS3.6). DICOM JSON (PS3.18 Annex F) keys
 * attributes by their eight-hex-digit tag, upper case, so that is the form kept here.
 */
export const Tag = {
  SpecificCharacterSet: '00080005',
  ImageType: '00080008',
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  StudyDate: '00080020',
  SeriesDate: '00080021',
  StudyTime: '00080030',
  SeriesTime: '00080031',
  AccessionNumber: '00080050',
  IssuerOfAccessionNumberSequence: '00080051',
  QueryRetrieveLevel: '00080052',
  RetrieveURL: '00081190',
  InstanceAvailability: '00080056',
  Modality: '00080060',
  ModalitiesInStudy: '00080061',
  SOPClassesInStudy: '00080062',
  InstitutionName: '00080080',
  ReferringPhysicianName: '00080090',
  TimezoneOffsetFromUTC: '00080201',
  StudyDescription: '00081030',
  ProcedureCodeSequence: '00081032',
  SeriesDescription: '0008103E',
  InstitutionalDepartmentName: '00081040',
  PerformingPhysicianName: '00081050',
  NameOfPhysiciansReadingStudy: '00081060',
  OperatorsName: '00081070',
  CodeValue: '00080100',
  CodingSchemeDesignator: '00080102',
  CodingSchemeVersion: '00080103',
  CodeMeaning: '00080104',
  LongCodeValue: '00080119',
  URNCodeValue: '00080120',
  PatientName: '00100010',
  PatientID: '00100020',
  IssuerOfPatientID: '00100021',
  IssuerOfPatientIDQualifiersSequence: '00100024',
  PatientBirthDate: '00100030',
  PatientSex: '00100040',
  LocalNamespaceEntityID: '00400031',
  UniversalEntityID: '00400032',
  UniversalEntityIDType: '00400033',
  BodyPartExamined: '00180015',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  StudyID: '00200010',
  SeriesNumber: '00200011',
  InstanceNumber: '00200013',
  Laterality: '00200060',
  ImageLaterality: '00200062',
  NumberOfStudyRelatedSeries: '00201206',
  NumberOfStudyRelatedInstances: '00201208',
  NumberOfSeriesRelatedInstances: '00201209',
  ReasonForRequestedProcedure: '00401002',
  ReasonForRequestedProcedureCodeSequence: '0040100A',
  ConceptNameCodeSequence: '0040A043',
  DocumentTitle: '00420010',
  ContentLabel: '00700080',
} as const;

const keywordByTag: Record<string, string> = Object.fromEntries(
  Object.entries(Tag).map(([keyword, tag]) => [tag, keyword]),
);

/** "StudyDate (0008,0020)" for messages; unknown tags print as the tag alone. */
export function describeTag(tag: string): string {
  const t = tag.toUpperCase();
  const pretty = `(${t.slice(0, 4)},${t.slice(4)})`;
  const keyword = keywordByTag[t];
  return keyword ? `${keyword} ${pretty}` : pretty;
}
