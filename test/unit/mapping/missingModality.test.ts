/** mapping.missingModality: a series without Modality (0008,0060) is a typed error by default, or OT with a warning. */
import { mapStudy } from '../../../src/mapping';
import { Tag } from '../../../src/dicom/tags';
import { basicResults, instance, n, series, source, study, STUDY_UID } from './dicom';
import { expectValid } from './validity';

const SERIES_UID = `${STUDY_UID}.1`;
const OT = { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'OT', display: 'Other' };

/**
 * A Secondary Capture study whose only series lacks Modality, as Orthanc reports it
 * (no Modalities in Study either).
 */
function secondaryCaptureWithoutModality() {
  const r = basicResults();
  delete r.series[0][Tag.Modality];
  delete r.study[Tag.ModalitiesInStudy];
  return r;
}

test('the default is the typed error naming the study and the attribute', () => {
  expect(source().mapping.missingModality).toBe('error');
  for (const src of [source(), source({ mapping: { missingModality: 'error' } })]) {
    const res = mapStudy(secondaryCaptureWithoutModality(), src);
    expect(res).toMatchObject({
      ok: false,
      error: { code: 'series-missing-modality', studyUid: STUDY_UID, tag: Tag.Modality },
    });
    expect(!res.ok && res.error.message).toContain(STUDY_UID);
    expect(!res.ok && res.error.message).toContain(SERIES_UID);
  }
});

test('OT: the series maps as DICOM "Other", the study lists OT, and a warning names the series', () => {
  const res = expectValid(mapStudy(secondaryCaptureWithoutModality(), source({ mapping: { missingModality: 'OT' } })));
  expect(res.imagingStudy.series?.map((x) => x.modality)).toEqual([OT]);
  expect(res.imagingStudy.modality).toEqual([OT]);
  const defaulted = res.warnings.filter((w) => w.code === 'series-modality-defaulted');
  expect(defaulted).toHaveLength(1);
  expect(defaulted[0]).toMatchObject({ studyUid: STUDY_UID, tag: Tag.Modality });
  expect(defaulted[0].message).toContain(SERIES_UID);
  // Nothing else is off about this study: the defaulted code is not also reported as a modality mismatch.
  expect(res.warnings.map((w) => w.code)).toEqual(['series-modality-defaulted']);
});

test('OT: only the series lacking Modality is defaulted; OT joins Modalities in Study without a mismatch warning', () => {
  const sc = `${STUDY_UID}.2`;
  const results = {
    study: study({ [Tag.NumberOfStudyRelatedSeries]: n('IS', 2), [Tag.NumberOfStudyRelatedInstances]: n('IS', 3) }),
    series: [
      series(),
      series(sc, { [Tag.SeriesNumber]: n('IS', 2), [Tag.NumberOfSeriesRelatedInstances]: n('IS', 1) }),
    ],
    instances: [instance(undefined, 1), instance(undefined, 2), instance(sc, 1)],
  };
  delete results.series[1][Tag.Modality];
  const res = expectValid(mapStudy(results, source({ mapping: { missingModality: 'OT' } })));
  expect(res.imagingStudy.series?.map((x) => [x.uid, x.modality.code])).toEqual([
    [SERIES_UID, 'CT'],
    [sc, 'OT'],
  ]);
  expect(res.imagingStudy.modality?.map((m) => m.code)).toEqual(['CT', 'OT']);
  expect(res.warnings.map((w) => w.code)).toEqual(['series-modality-defaulted']);
  expect(res.warnings[0].message).toContain(sc);
});

test('OT leaves series that have Modality untouched, and the output stays deterministic', () => {
  const withModality = mapStudy(basicResults(), source({ mapping: { missingModality: 'OT' } }));
  const byDefault = mapStudy(basicResults(), source());
  expect(withModality.ok && byDefault.ok && withModality.contentHash === byDefault.contentHash).toBe(true);
  expect(withModality.warnings.map((w) => w.code)).not.toContain('series-modality-defaulted');

  const a = mapStudy(secondaryCaptureWithoutModality(), source({ mapping: { missingModality: 'OT' } }));
  const b = mapStudy(secondaryCaptureWithoutModality(), source({ mapping: { missingModality: 'OT' } }));
  expect(
    a.ok &&
      b.ok &&
      JSON.stringify(a.imagingStudy) === JSON.stringify(b.imagingStudy) &&
      a.contentHash === b.contentHash,
  ).toBe(true);
});

test('an unknown setting is a configuration error, not a silent default', () => {
  expect(() => source({ mapping: { missingModality: 'CT' as never } })).toThrow();
});
