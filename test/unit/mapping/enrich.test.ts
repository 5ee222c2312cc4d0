/** WADO-RS metadata fills what the QIDO-RS rows lack, never what they have; series attributes only for their series. */
import { mapStudy } from '../../../src/mapping';
import { Tag } from '../../../src/dicom/tags';
import { basicResults, code, pn, s, series, source, sq, STUDY_UID } from './dicom';

const SERIES_UID = `${STUDY_UID}.1`;
const OTHER_SERIES = `${STUDY_UID}.2`;

const metadata = {
  [Tag.SeriesInstanceUID]: s('UI', SERIES_UID),
  [Tag.ProcedureCodeSequence]: sq(code('24627-2', 'LN', 'Chest CT')),
  [Tag.IssuerOfAccessionNumberSequence]: sq({
    [Tag.UniversalEntityID]: s('UT', '1.2.3.4'),
    [Tag.UniversalEntityIDType]: s('CS', 'ISO'),
  }),
  [Tag.ReasonForRequestedProcedureCodeSequence]: sq(code('R05', 'I10', 'Cough')),
  [Tag.ReferringPhysicianName]: pn('WANG^XIAO MING'),
  [Tag.PerformingPhysicianName]: pn('LIN^SHU HUI'),
  // Not enrichable: never taken from the metadata.
  [Tag.StudyDescription]: s('LO', 'from metadata'),
};

test('metadata fills the enrichable attributes the QIDO rows lack', () => {
  const base = basicResults();
  const results = { ...base, series: [...base.series, series(OTHER_SERIES)], metadata };
  const r = mapStudy(results, source());
  if (!r.ok) throw new Error(r.error.message);
  const st = r.imagingStudy;
  expect(st.procedureCode).toEqual([
    { coding: [{ system: 'http://loinc.org', code: '24627-2', display: 'Chest CT' }], text: 'Chest CT' },
  ]);
  expect(st.identifier?.find((i) => i.type?.coding?.[0].code === 'ACSN')?.system).toBe('urn:oid:1.2.3.4');
  expect(st.reasonCode?.[0].coding?.[0].code).toBe('R05');
  expect(st.referrer).toEqual({ display: 'XIAO MING WANG' });
  expect(st.description).toBeUndefined();
  expect(st.series?.find((x) => x.uid === SERIES_UID)?.performer?.[0].actor.display).toBe('SHU HUI LIN');
  expect(st.series?.find((x) => x.uid === OTHER_SERIES)?.performer).toBeUndefined();
  // Without metadata none of it is there.
  const plain = mapStudy(base, source());
  expect(plain.ok && plain.imagingStudy.procedureCode).toBeUndefined();
});

test('what the QIDO rows returned wins over the metadata', () => {
  const base = basicResults();
  base.study[Tag.ReferringPhysicianName] = pn('CHEN^TA WEN');
  base.study[Tag.ProcedureCodeSequence] = sq(code('RPID1', 'RADLEX', 'CT chest'));
  const r = mapStudy({ ...base, metadata }, source());
  if (!r.ok) throw new Error(r.error.message);
  expect(r.imagingStudy.referrer).toEqual({ display: 'TA WEN CHEN' });
  expect(r.imagingStudy.procedureCode?.map((c) => c.coding?.[0].code)).toEqual(['RPID1']);
});
