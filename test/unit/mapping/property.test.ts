/**
 * Property-based tests (fast-check) over random and malformed DICOM JSON: the mapper never throws and
 * always returns either a resource that validates against R4 + TW Core, or a typed error.
 */
import fc from 'fast-check';
import { mapStudy, isBlocking, validateEndpoint, validateImagingStudy } from '../../../src/mapping';
import type { DicomAttribute, DicomDataset } from '../../../src/dicom/dicomJson';
import { Tag } from '../../../src/dicom/tags';
import type { MapResult } from '../../../src/mapping/types';
import { source } from './dicom';

const ERROR_CODES = [
  'missing-study-uid',
  'invalid-study-uid',
  'series-missing-uid',
  'series-invalid-uid',
  'series-missing-modality',
  'instance-missing-uid',
  'instance-invalid-uid',
  'instance-missing-sop-class',
];

const uid = fc
  .array(fc.integer({ min: 0, max: 99999 }), { minLength: 2, maxLength: 8 })
  .map((parts) => `1.2.${parts.join('.')}`);
const text = fc.oneof(
  fc.string(),
  fc.fullUnicodeString({ maxLength: 20 }),
  fc.constantFrom(
    '',
    '  ',
    'CT',
    'MR',
    '陳^大文',
    '\u001b$B',
    'A\\B',
    'WRIST',
    'L',
    '+0800',
    '20240229',
    '093015.1234567',
  ),
);
const jsonJunk = fc.oneof(fc.anything(), text, fc.integer(), fc.double(), fc.constant(null));

/** Any attribute shape DICOM JSON could (or should not) hold. */
const attribute: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({
    vr: fc.constantFrom('CS', 'LO', 'PN', 'DA', 'TM', 'IS', 'SQ', 'UI', 'SH'),
    Value: fc.array(jsonJunk, { maxLength: 3 }),
  }),
  fc.record({
    vr: fc.constant('PN'),
    Value: fc.array(fc.record({ Alphabetic: jsonJunk, Ideographic: jsonJunk }, { requiredKeys: [] }), { maxLength: 2 }),
  }),
  fc.record({
    vr: fc.constant('SQ'),
    Value: fc.array(
      fc.dictionary(
        fc.constantFrom(
          Tag.CodeValue,
          Tag.CodingSchemeDesignator,
          Tag.CodeMeaning,
          Tag.UniversalEntityID,
          Tag.UniversalEntityIDType,
          Tag.LocalNamespaceEntityID,
        ),
        fc.record({ vr: fc.constant('LO'), Value: fc.array(jsonJunk, { maxLength: 2 }) }),
      ),
      { maxLength: 3 },
    ),
  }),
  fc.record({ vr: fc.constant('LO') }),
  fc.record({ Value: jsonJunk }),
  jsonJunk,
);

const STUDY_TAGS = [
  Tag.StudyDate,
  Tag.StudyTime,
  Tag.TimezoneOffsetFromUTC,
  Tag.AccessionNumber,
  Tag.IssuerOfAccessionNumberSequence,
  Tag.StudyID,
  Tag.PatientID,
  Tag.IssuerOfPatientID,
  Tag.PatientName,
  Tag.ReferringPhysicianName,
  Tag.NameOfPhysiciansReadingStudy,
  Tag.StudyDescription,
  Tag.ProcedureCodeSequence,
  Tag.ReasonForRequestedProcedure,
  Tag.ReasonForRequestedProcedureCodeSequence,
  Tag.InstitutionalDepartmentName,
  Tag.NumberOfStudyRelatedSeries,
  Tag.NumberOfStudyRelatedInstances,
  Tag.ModalitiesInStudy,
];
const SERIES_TAGS = [
  Tag.SeriesNumber,
  Tag.Modality,
  Tag.SeriesDescription,
  Tag.NumberOfSeriesRelatedInstances,
  Tag.SeriesDate,
  Tag.SeriesTime,
  Tag.BodyPartExamined,
  Tag.Laterality,
  Tag.ImageLaterality,
  Tag.PerformingPhysicianName,
  Tag.OperatorsName,
  Tag.TimezoneOffsetFromUTC,
];
const INSTANCE_TAGS = [
  Tag.InstanceNumber,
  Tag.ContentLabel,
  Tag.ConceptNameCodeSequence,
  Tag.DocumentTitle,
  Tag.ImageType,
  Tag.ImageLaterality,
  Tag.Modality,
];

const dataset = (tags: string[]) =>
  fc.dictionary(fc.constantFrom(...tags), attribute, { maxKeys: tags.length }) as fc.Arbitrary<DicomDataset>;
/** Mostly a proper value for a required attribute, sometimes anything. */
const mostly = (v: fc.Arbitrary<string>) =>
  fc.oneof(
    { weight: 15, arbitrary: v.map((x): unknown => ({ vr: 'CS', Value: [x] })) },
    { weight: 1, arbitrary: attribute },
  );
const uidAttr = mostly;

/** Studies whose structure is mostly right and whose attribute values are anything at all. */
const messyStudy = fc
  .record({
    studyUid: uid,
    study: dataset(STUDY_TAGS),
    studyUidAttr: fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: attribute }),
    series: fc.array(
      fc.record({
        uid: uidAttr(uid),
        modality: mostly(fc.constantFrom('CT', 'MR', 'SR', 'ct', 'X Y', 'US')),
        ds: dataset(SERIES_TAGS),
        instances: fc.array(
          fc.record({
            uid: uidAttr(uid),
            sopClass: mostly(fc.constantFrom('1.2.840.10008.5.1.4.1.1.2', '1.2.3', '1.2.840.10008.5.1.4.1.1.88.22')),
            ds: dataset(INSTANCE_TAGS),
          }),
          { maxLength: 4 },
        ),
      }),
      { maxLength: 4 },
    ),
  })
  .map(({ studyUid, study, studyUidAttr, series }) => {
    const studyDs = {
      ...study,
      [Tag.StudyInstanceUID]: (studyUidAttr ?? { vr: 'UI', Value: [studyUid] }) as DicomAttribute,
    };
    const seriesList = series.map((x) => ({
      ...x.ds,
      [Tag.SeriesInstanceUID]: x.uid as DicomAttribute,
      [Tag.Modality]: x.modality as DicomAttribute,
    }));
    const instances = series.flatMap((x) =>
      x.instances.map((i) => ({
        ...i.ds,
        [Tag.SeriesInstanceUID]: x.uid as DicomAttribute,
        [Tag.SOPInstanceUID]: i.uid as DicomAttribute,
        [Tag.SOPClassUID]: i.sopClass as DicomAttribute,
      })),
    );
    return { study: studyDs, series: seriesList, instances };
  });

/** Paths of empty strings, arrays and objects (FHIR forbids them). */
function emptyValuePaths(value: unknown, path: string): string[] {
  if (typeof value === 'string') return value.trim() === '' ? [path] : [];
  if (Array.isArray(value)) return value.length ? value.flatMap((v, i) => emptyValuePaths(v, `${path}[${i}]`)) : [path];
  if (value && typeof value === 'object') {
    const entries = Object.entries(value);
    return entries.length ? entries.flatMap(([k, v]) => emptyValuePaths(v, `${path}.${k}`)) : [path];
  }
  return [];
}

function checkOutcome(res: MapResult): void {
  if (res.ok) {
    const issues = [...validateImagingStudy(res.imagingStudy), ...validateEndpoint(res.endpoint)].filter(isBlocking);
    if (issues.length)
      throw new Error(`invalid resource: ${JSON.stringify(issues)}\n${JSON.stringify(res.imagingStudy)}`);
    expect(emptyValuePaths(res.imagingStudy, 'ImagingStudy')).toEqual([]);
  } else {
    expect(ERROR_CODES).toContain(res.error.code);
    expect(res.error.tag).toMatch(/^[0-9A-F]{8}$/);
  }
}

const sources = [
  source(),
  source({
    defaultTimezone: 'America/New_York',
    mapping: {
      patient: { mode: 'conditional', nameGroup: 'ideographic' },
      basedOnServiceRequest: true,
      accessionSystem: 'urn:acsn',
      studyIdSystem: 'urn:sid',
    },
  }),
];

test('malformed attribute values: never throws; a valid resource or a typed error', () => {
  const outcomes: Record<string, number> = {};
  fc.assert(
    fc.property(messyStudy, fc.constantFrom(...sources), (results, src) => {
      const res = mapStudy(results, src);
      checkOutcome(res);
      const key = res.ok ? 'ok' : res.error.code;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }),
    { numRuns: Number(process.env.PROP_RUNS ?? 300) },
  );
  // The generator must exercise both outcomes, or the property says little.
  expect(outcomes.ok).toBeGreaterThan(60);
  expect(Object.keys(outcomes).length).toBeGreaterThan(2);
  if (process.env.SHOW_OUTCOMES) console.log(outcomes);
});

test('garbage in any position: never throws; a valid resource or a typed error', () => {
  fc.assert(
    fc.property(fc.anything(), fc.anything(), fc.anything(), (study, series, instances) => {
      checkOutcome(mapStudy({ study, series, instances } as never, source()));
    }),
    { numRuns: Number(process.env.PROP_RUNS ?? 200) },
  );
});

/** Well-formed studies: always mapped, and what went in comes out. */
const wellFormed = fc
  .record({
    studyUid: uid,
    series: fc.uniqueArray(
      fc.record({
        suffix: fc.integer({ min: 1, max: 500 }),
        modality: fc.constantFrom('CT', 'MR', 'US', 'DX', 'SR', 'OT', 'PR'),
        number: fc.option(fc.integer({ min: 0, max: 9999 })),
        instances: fc.uniqueArray(fc.integer({ min: 1, max: 300 }), { maxLength: 5 }),
      }),
      { selector: (x) => x.suffix, maxLength: 5 },
    ),
    shuffleSeed: fc.integer(),
  })
  .map(({ studyUid, series, shuffleSeed }) => {
    const seriesDs = series.map((x) => ({
      [Tag.StudyInstanceUID]: { vr: 'UI', Value: [studyUid] },
      [Tag.SeriesInstanceUID]: { vr: 'UI', Value: [`${studyUid}.${x.suffix}`] },
      [Tag.Modality]: { vr: 'CS', Value: [x.modality] },
      ...(x.number === null ? {} : { [Tag.SeriesNumber]: { vr: 'IS', Value: [x.number] } }),
    }));
    const instances = series.flatMap((x) =>
      x.instances.map((i) => ({
        [Tag.SeriesInstanceUID]: { vr: 'UI', Value: [`${studyUid}.${x.suffix}`] },
        [Tag.SOPInstanceUID]: { vr: 'UI', Value: [`${studyUid}.${x.suffix}.${i}`] },
        [Tag.SOPClassUID]: { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.7'] },
        [Tag.InstanceNumber]: { vr: 'IS', Value: [i] },
      })),
    );
    const study = {
      [Tag.StudyInstanceUID]: { vr: 'UI', Value: [studyUid] },
      [Tag.PatientID]: { vr: 'LO', Value: ['P1'] },
    };
    const rotate = <T>(a: T[]) =>
      a.length
        ? [...a.slice(Math.abs(shuffleSeed) % a.length), ...a.slice(0, Math.abs(shuffleSeed) % a.length)].reverse()
        : a;
    return {
      results: { study, series: seriesDs, instances },
      shuffled: { study, series: rotate(seriesDs), instances: rotate(instances) },
      series,
    };
  });

test('well-formed studies map, keep every series and instance, and are order-independent', () => {
  fc.assert(
    fc.property(wellFormed, ({ results, shuffled, series }) => {
      const res = mapStudy(results as never, source());
      checkOutcome(res);
      if (!res.ok) throw new Error(res.error.message);
      const total = series.reduce((a, x) => a + x.instances.length, 0);
      expect(res.imagingStudy.numberOfSeries ?? 0).toBe(series.length);
      expect(res.imagingStudy.numberOfInstances ?? 0).toBe(total);
      expect(res.imagingStudy.status).toBe(total > 0 ? 'available' : 'registered');
      expect(new Set(res.imagingStudy.series?.flatMap((x) => x.instance ?? []).map((i) => i.uid))).toEqual(
        new Set(results.instances.map((i) => i[Tag.SOPInstanceUID].Value[0])),
      );
      const again = mapStudy(shuffled as never, source());
      expect(again.ok && JSON.stringify(again.imagingStudy)).toBe(JSON.stringify(res.imagingStudy));
    }),
    { numRuns: Number(process.env.PROP_RUNS ?? 150) },
  );
});
