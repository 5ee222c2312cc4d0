/**
 * The mapper's attribute table is exactly what is read: every tag the mapper, the patient facts and the Study UID
 * conflict check look up in
 * a study, series or instance result is recorded through a Proxy, over inputs that take every fallback path
 * (everything present; almost nothing present), and compared with the table in both directions. The include
 * lists are the table, so an attribute read but never requested cannot slip in.
 */
import type { DicomDataset } from '../../../src/dicom/dicomJson';
import { Tag } from '../../../src/dicom/tags';
import {
  INSTANCE_INCLUDE_FIELDS,
  SERIES_INCLUDE_FIELDS,
  STUDY_INCLUDE_FIELDS,
} from '../../../src/dicomweb/includeFields';
import { attributesOf, enrichableAttributesOf, type AttributeLevel } from '../../../src/dicom/attributes';
import { mapStudy } from '../../../src/mapping';
import { detailConflict, splitStudyConflicts } from '../../../src/mapping/conflicts';
import { patientFacts } from '../../../src/mapping/patient';
import { code, instance, n, pn, s, series, source, sq, study, STUDY_UID } from '../mapping/dicom';

type Reads = Record<AttributeLevel, Set<string>>;

/** The dataset behind a Proxy that notes each attribute tag looked up (read, or tested with `in`). */
function recording(ds: DicomDataset, into: Set<string>): DicomDataset {
  const note = (key: string | symbol) => {
    if (typeof key === 'string' && /^[0-9A-Fa-f]{8}$/.test(key)) into.add(key.toUpperCase());
  };
  return new Proxy(ds, {
    get(target, key, receiver) {
      note(key);
      return Reflect.get(target, key, receiver);
    },
    has(target, key) {
      note(key);
      return Reflect.has(target, key);
    },
  });
}

function readsOf(cases: Array<{ study: DicomDataset; series: DicomDataset[]; instances: DicomDataset[] }>): Reads {
  const reads: Reads = { study: new Set(), series: new Set(), instance: new Set() };
  for (const c of cases) {
    const studyDs = recording(c.study, reads.study);
    const results = {
      study: studyDs,
      series: c.series.map((d) => recording(d, reads.series)),
      instances: c.instances.map((d) => recording(d, reads.instance)),
    };
    for (const src of [source(), source({ mapping: { patient: { issuerSystems: { HOSP: 'urn:x' } } } as never })]) {
      const r = mapStudy(results, src);
      expect(r.ok).toBe(true);
      patientFacts(studyDs, src);
    }
    splitStudyConflicts([studyDs, studyDs]);
    detailConflict(STUDY_UID, studyDs, { series: results.series, instances: results.instances });
  }
  return reads;
}

const SERIES_UID = `${STUDY_UID}.1`;

/** Every attribute present, each with a value. */
const full = {
  study: study({
    [Tag.TimezoneOffsetFromUTC]: s('SH', '+0800'),
    [Tag.StudyDescription]: s('LO', 'CT chest'),
    [Tag.StudyID]: s('SH', '1'),
    [Tag.IssuerOfAccessionNumberSequence]: sq({ [Tag.LocalNamespaceEntityID]: s('UT', 'RIS') }),
    [Tag.IssuerOfPatientID]: s('LO', 'HOSP'),
    [Tag.IssuerOfPatientIDQualifiersSequence]: sq({
      [Tag.UniversalEntityID]: s('UT', '1.2.3'),
      [Tag.UniversalEntityIDType]: s('CS', 'ISO'),
    }),
    [Tag.ReferringPhysicianName]: pn('WANG^XIAO MING'),
    [Tag.NameOfPhysiciansReadingStudy]: pn('LIN^SHU HUI'),
    [Tag.ProcedureCodeSequence]: sq(code('24627-2', 'LN', 'Chest CT')),
    [Tag.ReasonForRequestedProcedure]: s('LO', 'cough'),
    [Tag.ReasonForRequestedProcedureCodeSequence]: sq(code('R05', 'I10', 'Cough')),
    [Tag.InstitutionalDepartmentName]: s('LO', 'Radiology'),
    [Tag.PatientBirthDate]: s('DA', '19700101'),
    [Tag.PatientSex]: s('CS', 'M'),
  }),
  series: [
    series(SERIES_UID, {
      [Tag.SeriesDescription]: s('LO', 'Axial'),
      [Tag.SeriesDate]: s('DA', '20240315'),
      [Tag.SeriesTime]: s('TM', '093015'),
      [Tag.TimezoneOffsetFromUTC]: s('SH', '+0800'),
      [Tag.BodyPartExamined]: s('CS', 'CHEST'),
      [Tag.Laterality]: s('CS', 'L'),
      [Tag.PerformingPhysicianName]: pn('WANG^XIAO MING'),
      [Tag.OperatorsName]: pn('HO^WEI'),
    }),
  ],
  instances: [1, 2].map((i) =>
    instance(SERIES_UID, i, { [Tag.ContentLabel]: s('CS', 'LABEL'), [Tag.ImageLaterality]: s('CS', 'L') }),
  ),
};

/** Only what FHIR requires and the Patient ID: every fallback chain is read to its end. */
const sparse = {
  study: { [Tag.StudyInstanceUID]: s('UI', STUDY_UID), [Tag.PatientID]: s('LO', 'A1') },
  series: [{ [Tag.SeriesInstanceUID]: s('UI', SERIES_UID), [Tag.Modality]: s('CS', 'SR') }],
  instances: [
    {
      [Tag.SeriesInstanceUID]: s('UI', SERIES_UID),
      [Tag.SOPInstanceUID]: s('UI', `${SERIES_UID}.1`),
      [Tag.SOPClassUID]: s('UI', '1.2.840.10008.5.1.4.1.1.88.11'),
    },
  ],
};

const sorted = (xs: Iterable<string>) => [...xs].sort();

test('the attribute table per level is exactly what the mapper, the patient facts and the conflict check read', () => {
  const reads = readsOf([full, sparse, { ...full, study: study({ [Tag.NumberOfStudyRelatedInstances]: n('IS', 2) }) }]);
  expect(sorted(reads.study)).toEqual(sorted(attributesOf('study')));
  expect(sorted(reads.series)).toEqual(sorted(attributesOf('series')));
  expect(sorted(reads.instance)).toEqual(sorted(attributesOf('instance')));
});

test('the include lists are the table, with the sequences QIDO-RS omits by default (reason codes, issuer qualifiers, image laterality) and without 0008,0005', () => {
  expect(STUDY_INCLUDE_FIELDS).toEqual(attributesOf('study'));
  expect(SERIES_INCLUDE_FIELDS).toEqual(attributesOf('series'));
  expect(INSTANCE_INCLUDE_FIELDS).toEqual(attributesOf('instance'));
  expect(STUDY_INCLUDE_FIELDS).toEqual(
    expect.arrayContaining([Tag.ReasonForRequestedProcedureCodeSequence, Tag.IssuerOfPatientIDQualifiersSequence]),
  );
  expect(SERIES_INCLUDE_FIELDS).toContain(Tag.ImageLaterality);
  for (const list of [STUDY_INCLUDE_FIELDS, SERIES_INCLUDE_FIELDS, INSTANCE_INCLUDE_FIELDS])
    expect(list).not.toContain(Tag.SpecificCharacterSet);
});

test('the attributes enrichment may fill are in the table', () => {
  expect(enrichableAttributesOf('study').sort()).toEqual(
    [
      Tag.ProcedureCodeSequence,
      Tag.IssuerOfAccessionNumberSequence,
      Tag.ReasonForRequestedProcedureCodeSequence,
      Tag.ReferringPhysicianName,
    ].sort(),
  );
  expect(enrichableAttributesOf('series')).toEqual([Tag.PerformingPhysicianName]);
});
