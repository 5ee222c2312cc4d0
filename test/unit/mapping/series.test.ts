/** Series- and instance-level mapping rules: QIDO-RS series and instance results → ImagingStudy.series. */
import { mapStudy } from '../../../src/mapping';
import { Tag } from '../../../src/dicom/tags';
import { basicResults, code, instance, n, pn, s, series, source, sq, STUDY_UID } from './dicom';
import { expectValid } from './validity';

const SERIES_UID = `${STUDY_UID}.1`;
const mapOk = (results = basicResults(), src = source()) => expectValid(mapStudy(results, src));
const firstSeries = (r = basicResults(), src = source()) => mapOk(r, src).imagingStudy.series![0];

test('uid, number, modality, description, numberOfInstances', () => {
  const r = basicResults();
  r.series[0][Tag.SeriesDescription] = s('LO', 'Axial 5mm');
  expect(firstSeries(r)).toMatchObject({
    uid: SERIES_UID,
    number: 1,
    modality: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT', display: 'Computed Tomography' },
    description: 'Axial 5mm',
    numberOfInstances: 2,
  });
});

test('series numberOfInstances is counted when the PACS omits it, and the PACS count wins otherwise (with a warning)', () => {
  const r = basicResults();
  delete r.series[0][Tag.NumberOfSeriesRelatedInstances];
  expect(firstSeries(r).numberOfInstances).toBe(2);
  r.series[0][Tag.NumberOfSeriesRelatedInstances] = n('IS', 9);
  const res = mapOk(r);
  expect(res.imagingStudy.series![0].numberOfInstances).toBe(9);
  expect(res.warnings.map((w) => w.code)).toContain('series-instance-count-mismatch');
});

test('series started uses the study time zone rule', () => {
  const r = basicResults();
  r.series[0][Tag.SeriesDate] = s('DA', '20240315');
  r.series[0][Tag.SeriesTime] = s('TM', '0931');
  expect(firstSeries(r).started).toBe('2024-03-15T09:31:00+08:00');
  r.study[Tag.TimezoneOffsetFromUTC] = s('SH', '+0900');
  expect(firstSeries(r).started).toBe('2024-03-15T09:31:00+09:00');
});

describe('bodySite (PS3.16 Annex L)', () => {
  test.each([
    ['CHEST', '43799004', 'Chest'],
    ['abdomen', '818981001', 'Abdomen'],
    ['LSPINE', '122496007', 'Lumbar spine'],
    ['WRIST', '74670003', 'Wrist joint'],
  ])('%s → SNOMED %s', (term, snomed, display) => {
    const r = basicResults();
    r.series[0][Tag.BodyPartExamined] = s('CS', term);
    expect(firstSeries(r).bodySite).toEqual({ system: 'http://snomed.info/sct', code: snomed, display });
  });

  test('an unknown term is kept as display, with a warning', () => {
    const r = basicResults();
    r.series[0][Tag.BodyPartExamined] = s('CS', 'CHEST_LAT');
    const res = mapOk(r);
    expect(res.imagingStudy.series![0].bodySite).toEqual({ display: 'CHEST_LAT' });
    expect(res.warnings.map((w) => w.code)).toContain('unknown-body-part');
  });
});

describe('laterality', () => {
  test.each([
    ['L', '419161000', 'Unilateral left'],
    ['R', '419465000', 'Unilateral right'],
    ['B', '51440002', 'Right and left'],
  ])('Laterality %s → SNOMED %s', (value, snomed, display) => {
    const r = basicResults();
    r.series[0][Tag.Laterality] = s('CS', value);
    expect(firstSeries(r).laterality).toEqual({ system: 'http://snomed.info/sct', code: snomed, display });
  });

  test('Image Laterality when Laterality is absent (series level, else agreeing instances); U gives none', () => {
    const r = basicResults();
    r.series[0][Tag.ImageLaterality] = s('CS', 'R');
    expect(firstSeries(r).laterality?.code).toBe('419465000');
    const fromInstances = basicResults();
    fromInstances.instances.forEach((i) => (i[Tag.ImageLaterality] = s('CS', 'L')));
    expect(firstSeries(fromInstances).laterality?.code).toBe('419161000');
    const disagreeing = basicResults();
    disagreeing.instances[0][Tag.ImageLaterality] = s('CS', 'L');
    disagreeing.instances[1][Tag.ImageLaterality] = s('CS', 'R');
    expect(firstSeries(disagreeing).laterality).toBeUndefined();
    const unpaired = basicResults();
    unpaired.series[0][Tag.Laterality] = s('CS', 'U');
    expect(firstSeries(unpaired).laterality).toBeUndefined();
  });
});

test('performers: Performing Physician → PRF, Operators → SPRF (series-performer-function)', () => {
  const r = basicResults();
  r.series[0][Tag.PerformingPhysicianName] = pn('LEE^DOC');
  r.series[0][Tag.OperatorsName] = pn({ Alphabetic: 'WU^TECH', Ideographic: '吳^技師' });
  expect(firstSeries(r).performer).toEqual([
    {
      function: {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PRF', display: 'performer' },
        ],
      },
      actor: { display: 'DOC LEE' },
    },
    {
      function: {
        coding: [
          {
            system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType',
            code: 'SPRF',
            display: 'secondary performer',
          },
        ],
      },
      actor: { display: 'TECH WU' },
    },
  ]);
  expect(
    firstSeries(r, source({ mapping: { patient: { nameGroup: 'ideographic' } } })).performer?.[1].actor.display,
  ).toBe('吳技師');
});

describe('instances', () => {
  test('uid, sopClass as urn:oid with the PS3.6 name, number', () => {
    expect(firstSeries().instance![0]).toEqual({
      uid: `${SERIES_UID}.1`,
      sopClass: { system: 'urn:ietf:rfc:3986', code: 'urn:oid:1.2.840.10008.5.1.4.1.1.2', display: 'CT Image Storage' },
      number: 1,
    });
  });

  test('an unknown SOP class keeps the code without display', () => {
    const r = basicResults();
    r.instances[0][Tag.SOPClassUID] = s('UI', '1.2.3.4.5');
    expect(firstSeries(r).instance![0].sopClass).toEqual({ system: 'urn:ietf:rfc:3986', code: 'urn:oid:1.2.3.4.5' });
  });

  test('title precedence: Content Label, Concept Name meaning, Document Title, Image Type', () => {
    const make = (extra: Record<string, unknown>) => {
      const r = basicResults();
      Object.assign(r.instances[0], extra);
      return firstSeries(r).instance![0].title;
    };
    const imageType = { [Tag.ImageType]: s('CS', 'ORIGINAL', 'PRIMARY', 'AXIAL') };
    const docTitle = { [Tag.DocumentTitle]: s('ST', 'Referral letter') };
    const concept = { [Tag.ConceptNameCodeSequence]: sq(code('18748-4', 'LN', 'Diagnostic imaging study')) };
    const label = { [Tag.ContentLabel]: s('CS', 'SEG_LIVER') };
    expect(make(imageType)).toBe('ORIGINAL\\PRIMARY\\AXIAL');
    expect(make({ ...imageType, ...docTitle })).toBe('Referral letter');
    expect(make({ ...imageType, ...docTitle, ...concept })).toBe('Diagnostic imaging study');
    expect(make({ ...imageType, ...docTitle, ...concept, ...label })).toBe('SEG_LIVER');
  });

  test('instances left out when includeInstances is off; counts still come from them', () => {
    const r = basicResults();
    delete r.series[0][Tag.NumberOfSeriesRelatedInstances];
    const s0 = firstSeries(r, source({ mapping: { includeInstances: false } }));
    expect(s0.instance).toBeUndefined();
    expect(s0.numberOfInstances).toBe(2);
  });
});

describe('ordering and odd results', () => {
  test('series by number then UID (numberless last); instances likewise', () => {
    const r = basicResults();
    r.series = [
      series(`${STUDY_UID}.9`, { [Tag.SeriesNumber]: { vr: 'IS' }, [Tag.NumberOfSeriesRelatedInstances]: n('IS', 0) }),
      series(`${STUDY_UID}.3`, { [Tag.SeriesNumber]: n('IS', 2), [Tag.NumberOfSeriesRelatedInstances]: n('IS', 0) }),
      series(`${STUDY_UID}.2`, { [Tag.SeriesNumber]: n('IS', 2), [Tag.NumberOfSeriesRelatedInstances]: n('IS', 0) }),
      series(SERIES_UID, { [Tag.SeriesNumber]: n('IS', 10) }),
    ];
    r.instances = [
      instance(SERIES_UID, 3),
      instance(SERIES_UID, 1),
      { ...instance(SERIES_UID, 7), [Tag.InstanceNumber]: { vr: 'IS' } },
    ];
    r.series[3][Tag.NumberOfSeriesRelatedInstances] = n('IS', 3);
    r.study[Tag.NumberOfStudyRelatedSeries] = n('IS', 4);
    r.study[Tag.NumberOfStudyRelatedInstances] = n('IS', 3);
    const out = mapOk(r).imagingStudy.series!;
    expect(out.map((x) => x.uid)).toEqual([`${STUDY_UID}.2`, `${STUDY_UID}.3`, SERIES_UID, `${STUDY_UID}.9`]);
    expect(out[2].instance!.map((i) => i.uid)).toEqual([`${SERIES_UID}.1`, `${SERIES_UID}.3`, `${SERIES_UID}.7`]);
  });

  test('a series known only from its instances is rebuilt from them', () => {
    const r = basicResults();
    r.series = [];
    r.instances = r.instances.map((i) => ({ ...i, [Tag.Modality]: s('CS', 'CT'), [Tag.SeriesNumber]: n('IS', 4) }));
    const res = mapOk(r);
    expect(res.imagingStudy.series).toHaveLength(1);
    expect(res.imagingStudy.series![0]).toMatchObject({ uid: SERIES_UID, number: 4, numberOfInstances: 2 });
    expect(res.warnings.map((w) => w.code)).toContain('series-from-instances');
  });

  test('results of another study, duplicates and non-objects are skipped with warnings', () => {
    const r = basicResults();
    r.series.push({ ...series('9.9.9'), [Tag.StudyInstanceUID]: s('UI', '9.9') });
    r.series.push(series());
    r.instances.push(r.instances[0]);
    (r.instances as unknown[]).push(42);
    const res = mapOk(r);
    expect(res.imagingStudy.series).toHaveLength(1);
    expect(res.imagingStudy.series![0].instance).toHaveLength(2);
    expect(res.warnings.map((w) => w.code)).toEqual(
      expect.arrayContaining(['foreign-result', 'duplicate-series', 'duplicate-instance', 'bad-results']),
    );
  });

  test('a negative Series Number is dropped with a warning', () => {
    const r = basicResults();
    r.series[0][Tag.SeriesNumber] = n('IS', -3);
    const res = mapOk(r);
    expect(res.imagingStudy.series![0].number).toBeUndefined();
    expect(res.warnings.map((w) => w.code)).toContain('bad-number');
  });

  test('a series UID that cannot be a FHIR id is a typed error', () => {
    const r = basicResults();
    r.series[0][Tag.SeriesInstanceUID] = s('UI', '1.2.3 4');
    expect(mapStudy(r, source())).toMatchObject({
      ok: false,
      error: { code: 'series-invalid-uid', studyUid: STUDY_UID },
    });
  });
});
