/**
 * Study searches against a real Orthanc: paging across many pages, LimitFindResults below the
 * studies of one day and of a range (every study exactly once), undated studies, batched details
 * equal to per-study ones, and names/IDs with `^`, spaces and Chinese characters.
 */
import { parseConfig } from '../../../src/config';
import { createPacsSource, type PacsSource } from '../../../src/dicomweb';
import { readPersonName, readString, Tag, valueOf, type DicomDataset } from '../../../src/dicom';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import {
  generateCorpus,
  loadStudies,
  makeSeries,
  makeStudy,
  modalitiesInStudy,
  studiesBetween,
  studiesPerDay,
  undatedStudies,
  type SyntheticStudy,
} from '../../fixtures/synthetic';

const uid = (ds: DicomDataset) => valueOf(readString(ds, Tag.StudyInstanceUID))!;
const uids = (list: DicomDataset[]) => list.map(uid).sort();
const factUids = (list: SyntheticStudy[]) => list.map((s) => s.studyUid).sort();

function source(orthanc: OrthancServer, extra: Record<string, unknown> = {}): PacsSource {
  return createPacsSource(
    parseConfig({ sources: [{ id: 'orthanc', qidoBase: orthanc.dicomWebBase, ...extra }] }).sources[0],
    {
      retry: { baseMs: 50, maxMs: 500 },
    },
  );
}

describe('unlimited Orthanc', () => {
  let orthanc: OrthancServer;
  const corpus = generateCorpus({ seed: 7, studies: 45, days: { from: '20240101', count: 5 }, undated: 3 });
  // Names and IDs that strict encoding would lose on Orthanc 1.10.
  const special = makeStudy({
    studyUid: '1.2.826.0.1.3680043.8.498.900001',
    studyDate: '20240301',
    patient: { id: 'ID 77^B', alphabetic: 'Doe^Peter Paul', ideographic: '陳^大文', birthDate: '19800101', sex: 'M' },
    series: [makeSeries({ seriesUid: '1.2.826.0.1.3680043.8.498.900002', modality: 'CT' })],
  });
  const sameIdeographic = makeStudy({
    studyUid: '1.2.826.0.1.3680043.8.498.900011',
    studyDate: '20240301',
    patient: { id: '病人1', alphabetic: 'Chen^Da Ming', ideographic: '陳^大明' },
    series: [makeSeries({ seriesUid: '1.2.826.0.1.3680043.8.498.900012', modality: 'MR' })],
  });

  beforeAll(async () => {
    orthanc = await startOrthanc();
    await loadStudies(orthanc, [...corpus, special, sameIdeographic]);
  });
  afterAll(() => orthanc?.stop());

  it('pages through more studies than one page, each once', async () => {
    const s = source(orthanc, { pageSize: 4 });
    const found = await s.findStudies({ from: '20240101', to: '20240105' });
    const expected = factUids(studiesBetween(corpus, '20240101', '20240105'));
    expect(uids(found)).toEqual(expected);
    expect(s.stats.requests.studies).toBeGreaterThan(expected.length / 4);
    expect(s.stats.splits).toBe(0);
  });

  it('pages through a ModalitiesInStudy match, each matching study once', async () => {
    // Orthanc 1.10 answers nothing past offset 0 when ModalitiesInStudy is a matching key, so this
    // needs several pages to show that no page is lost.
    const s = source(orthanc, { pageSize: 3 });
    const found = await s.findStudies({ from: '20240101', to: '20240105' }, { ModalitiesInStudy: 'CT' });
    const expected = factUids(
      studiesBetween(corpus, '20240101', '20240105').filter((st) => modalitiesInStudy(st).includes('CT')),
    );
    expect(expected.length).toBeGreaterThan(6);
    expect(uids(found)).toEqual(expected);
    const page = await s.searchStudies(
      { StudyDate: '20240101-20240105', ModalitiesInStudy: 'CT,MR' },
      { limit: 100, offset: 0 },
    );
    const ctOrMr = studiesBetween(corpus, '20240101', '20240105').filter((st) =>
      modalitiesInStudy(st).some((m) => m === 'CT' || m === 'MR'),
    );
    expect(uids(page)).toEqual(factUids(ctOrMr));
  });

  it('returns the study-level attributes the mapper reads (explicit includefield)', async () => {
    const s = source(orthanc);
    const [study] = await s.findStudies({ from: '20240301', to: '20240301' }, { PatientID: 'ID 77^B' });
    expect(uid(study)).toBe(special.studyUid);
    expect(valueOf(readString(study, Tag.StudyDescription))).toBe(special.description);
    expect(valueOf(readString(study, Tag.AccessionNumber))).toBe(special.accession);
    expect(valueOf(readString(study, Tag.TimezoneOffsetFromUTC))).toBe('+0800');
    expect(valueOf(readString(study, Tag.ModalitiesInStudy))).toBe('CT');
    // Orthanc 1.10 leaves sequences (ProcedureCodeSequence…) out of QIDO answers; studyMetadata has them.
    expect(valueOf(readString(study, Tag.StudyID))).toBe(special.studyId);
  });

  it('finds the undated studies by a separate sweep', async () => {
    const s = source(orthanc);
    const undated = await s.findUndatedStudies();
    expect(uids(undated)).toEqual(factUids(undatedStudies(corpus)));
  });

  it('Chinese names come back intact', async () => {
    const s = source(orthanc);
    const found = await s.findStudies({ from: '20240101', to: '20240301' });
    const byUid = new Map(found.map((d) => [uid(d), d]));
    const withIdeographic = [...corpus, special].filter((c) => c.patient.ideographic && c.studyDate);
    expect(withIdeographic.length).toBeGreaterThan(3);
    for (const fact of withIdeographic) {
      const name = valueOf(readPersonName(byUid.get(fact.studyUid)!, Tag.PatientName));
      expect(name?.Ideographic).toBe(fact.patient.ideographic);
      if (fact.patient.alphabetic) expect(name?.Alphabetic).toBe(fact.patient.alphabetic);
    }
  });

  it.each([
    ['PatientName', 'Doe^Peter Paul', [special]],
    ['PatientName', 'doe^peter paul', [special]],
    ['PatientName', '陳^大文', [special]],
    ['PatientName', '陳^大*', [special, sameIdeographic]],
    ['PatientID', 'ID 77^B', [special]],
    ['PatientID', '病人1', [sameIdeographic]],
    ['PatientID', 'ID 77^C', []],
  ])('matches %s=%s exactly (`^`, spaces, Chinese)', async (key, value, expected) => {
    const s = source(orthanc);
    // A lookup never widens a Patient ID (refused below); a sweep's filter is widened and narrowed here.
    const found =
      key === 'PatientID'
        ? await s.findStudies({ from: '20240301', to: '20240301' }, { [key]: value })
        : await s.searchStudies({ [key]: value, StudyDate: '20240301' });
    expect(uids(found)).toEqual(factUids(expected as SyntheticStudy[]));
  });

  it('a lookup refuses a Patient ID this PACS cannot be sent exactly, without a request', async () => {
    const s = source(orthanc);
    const before = s.stats.requests.studies;
    await expect(s.searchStudies({ PatientID: 'ID 77^B' })).rejects.toThrow(/cannot be sent " " exactly/);
    expect(s.stats.requests.studies).toBe(before);
  });

  it('matches UIDs and date ranges', async () => {
    const s = source(orthanc);
    const two = corpus.slice(0, 2).map((c) => c.studyUid);
    expect(uids(await s.searchStudies({ StudyInstanceUID: two.join(',') }))).toEqual([...two].sort());
    expect(uids(await s.searchStudies({ StudyDate: '20240102-20240103' }))).toEqual(
      factUids(studiesBetween(corpus, '20240102', '20240103')),
    );
  });

  it('batched detail queries equal per-study queries and the facts', async () => {
    const batched = source(orthanc, { uidListMatching: 'auto', detailBatchSize: 7 });
    // Detail pages smaller than a batch's answers: batches page by detailPageSize.
    const smallPages = source(orthanc, { uidListMatching: 'auto', detailBatchSize: 7, detailPageSize: 5 });
    const perStudy = source(orthanc, { uidListMatching: 'off' });
    expect(await batched.supportsUidListMatching()).toBe(true);
    const studyUids = corpus.map((c) => c.studyUid);
    const a = await batched.studyDetails(studyUids);
    const b = await perStudy.studyDetails(studyUids);
    const summary = (m: Map<string, { series: DicomDataset[]; instances: DicomDataset[] }>) =>
      Object.fromEntries(
        [...m].map(([k, v]) => [
          k,
          {
            series: v.series.map((d) => valueOf(readString(d, Tag.SeriesInstanceUID))).sort(),
            instances: v.instances.map((d) => valueOf(readString(d, Tag.SOPInstanceUID))).sort(),
          },
        ]),
      );
    expect(summary(a)).toEqual(summary(b));
    const facts = Object.fromEntries(
      corpus.map((c) => [
        c.studyUid,
        {
          series: c.series.map((x) => x.seriesUid).sort(),
          instances: c.series.flatMap((x) => x.instances.map((i) => i.sopInstanceUid)).sort(),
        },
      ]),
    );
    expect(summary(a)).toEqual(facts);
    const batches = Math.ceil(studyUids.length / 7);
    expect(batched.stats.requests).toMatchObject({ series: batches, instances: batches });
    expect(summary(await smallPages.studyDetails(studyUids))).toEqual(facts);
    expect(smallPages.stats.requests.instances).toBeGreaterThan(batches);
  });

  it('WADO-RS metadata of one study', async () => {
    const s = source(orthanc);
    const meta = await s.studyMetadata(special.studyUid);
    expect(meta).toHaveLength(special.series[0].instances.length);
    expect(valueOf(readString(meta[0], Tag.SOPClassUID))).toBe(special.series[0].instances[0].sopClassUid);
  });
});

describe('Orthanc with LimitFindResults below the studies of one day', () => {
  const CAP = 4;
  let orthanc: OrthancServer;
  // Every dated study gets a StudyTime: Orthanc 1.10 has no Empty Value Matching, so studies
  // without one on an over-cap day cannot be listed (they are reported, see studySearch.ts).
  const corpus = generateCorpus({
    seed: 11,
    studies: 40,
    days: { from: '20240610', count: 3 },
    undated: 2,
    maxSeries: 2,
    maxInstances: 2,
  }).map((s, i) =>
    s.studyDate && !s.studyTime ? { ...s, studyTime: `${String(8 + (i % 10)).padStart(2, '0')}1500` } : s,
  );

  beforeAll(async () => {
    orthanc = await startOrthanc({ limitFindResults: CAP });
    await loadStudies(orthanc, corpus);
  });
  afterAll(() => orthanc?.stop());

  it('has more studies per day than the cap', () => {
    for (const [day, n] of studiesPerDay(corpus)) if (day) expect(n).toBeGreaterThan(CAP * 2);
  });

  it('finds every study exactly once, across days and within one day', async () => {
    const s = source(orthanc, { serverLimit: CAP, pageSize: 100 });
    const found = await s.findStudies({ from: '20240601', to: '20240630' });
    expect(found.map(uid).sort()).toEqual(factUids(studiesBetween(corpus, '20240601', '20240630')));
    expect(s.stats.splits).toBeGreaterThan(3);
    expect(s.stats.unresolved).toBe(0);

    const oneDay = await source(orthanc, { serverLimit: CAP }).findStudies({ from: '20240611', to: '20240611' });
    expect(oneDay.map(uid).sort()).toEqual(factUids(studiesBetween(corpus, '20240611', '20240611')));
  });

  it('without serverLimit Orthanc truncates silently (why the limit must be configured)', async () => {
    const s = source(orthanc, { pageSize: 100 });
    const found = await s.findStudies({ from: '20240601', to: '20240630' });
    expect(found.length).toBeLessThan(studiesBetween(corpus, '20240601', '20240630').length);
  });

  it('splits a detail batch whose results reach the cap; equals the facts', async () => {
    const s = source(orthanc, { serverLimit: CAP, detailBatchSize: 20 });
    const dated = corpus.filter((c) => c.studyDate);
    const details = await s.studyDetails(
      dated.map((c) => c.studyUid),
      { instances: false },
    );
    for (const c of dated) {
      expect(
        details
          .get(c.studyUid)!
          .series.map((d) => valueOf(readString(d, Tag.SeriesInstanceUID)))
          .sort(),
      ).toEqual(c.series.map((x) => x.seriesUid).sort());
    }
    expect(s.stats.splits).toBeGreaterThan(0);
  });
});
