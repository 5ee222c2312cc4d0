/**
 * Series-level on-demand searches against a real Orthanc: a series found by its UID (alone or in a
 * UID list) names the study holding it, in one request per page; paging and local narrowing of
 * widened values work as they do for studies.
 */
import { parseConfig } from '../../../src/config';
import { createPacsSource, type PacsSource } from '../../../src/dicomweb';
import { readNumber, readString, Tag, valueOf, type DicomDataset } from '../../../src/dicom';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { loadStudies, makeSeries, makeStudy } from '../../fixtures/synthetic';

const seriesUid = (ds: DicomDataset) => valueOf(readString(ds, Tag.SeriesInstanceUID));
const studyUid = (ds: DicomDataset) => valueOf(readString(ds, Tag.StudyInstanceUID));

let orthanc: OrthancServer;
const ct = makeStudy({
  series: [
    makeSeries({ modality: 'CT', number: 1, description: 'Axial 5mm', instances: 2 }),
    makeSeries({ modality: 'CT', number: 2, description: 'Axial_5mm', instances: 1 }),
    makeSeries({ modality: 'SR', number: 3, instances: 1 }),
  ],
});
const mr = makeStudy({ accession: 'SS-MR', series: [makeSeries({ modality: 'MR', number: 1, instances: 3 })] });

function source(): PacsSource {
  return createPacsSource(
    parseConfig({ sources: [{ id: 'orthanc', qidoBase: orthanc.dicomWebBase, retries: 0 }] }).sources[0],
  );
}

beforeAll(async () => {
  orthanc = await startOrthanc();
  await loadStudies(orthanc, [ct, mr]);
});
afterAll(() => orthanc?.stop());

describe('searchSeries', () => {
  it('finds each series by its UID, with the study holding it and the series attributes, in one request', async () => {
    for (const study of [ct, mr]) {
      for (const series of study.series) {
        const s = source();
        const rows = await s.searchSeries({ SeriesInstanceUID: series.seriesUid }, { limit: 2, offset: 0 });
        expect(rows.map(seriesUid)).toEqual([series.seriesUid]);
        expect(studyUid(rows[0])).toBe(study.studyUid);
        expect(valueOf(readString(rows[0], Tag.Modality))).toBe(series.modality);
        expect(valueOf(readNumber(rows[0], Tag.NumberOfSeriesRelatedInstances))).toBe(series.instances.length);
        expect(s.stats.requests).toMatchObject({ studies: 0, series: 1, instances: 0 });
      }
    }
  });

  it('a UID list finds series of different studies in one request; an unknown UID finds nothing', async () => {
    const s = source();
    const rows = await s.searchSeries(
      { SeriesInstanceUID: `${ct.series[2].seriesUid},${mr.series[0].seriesUid}` },
      { limit: 4, offset: 0 },
    );
    expect(new Map(rows.map((r) => [seriesUid(r), studyUid(r)]))).toEqual(
      new Map([
        [ct.series[2].seriesUid, ct.studyUid],
        [mr.series[0].seriesUid, mr.studyUid],
      ]),
    );
    expect(s.stats.requests.series).toBe(1);
    expect(await s.searchSeries({ SeriesInstanceUID: `${mr.series[0].seriesUid}.9` }, { limit: 2, offset: 0 })).toEqual(
      [],
    );
    // Without a page, the server's own answer.
    expect((await s.searchSeries({ SeriesInstanceUID: mr.series[0].seriesUid })).map(studyUid)).toEqual([mr.studyUid]);
  });

  it('pages with limit and offset', async () => {
    const s = source();
    const pages = await Promise.all(
      [0, 1, 2, 3].map((offset) => s.searchSeries({ StudyInstanceUID: ct.studyUid }, { limit: 1, offset })),
    );
    expect(pages.map((p) => p.length)).toEqual([1, 1, 1, 0]);
    expect(pages.flat().map(seriesUid).sort()).toEqual(ct.series.map((x) => x.seriesUid).sort());
  });

  it('a value widened on the wire (a space) is narrowed to exactly what was asked', async () => {
    const s = source();
    const rows = await s.searchSeries(
      { StudyInstanceUID: ct.studyUid, SeriesDescription: 'Axial 5mm' },
      { limit: 10, offset: 0 },
    );
    expect(rows.map(seriesUid)).toEqual([ct.series[0].seriesUid]);
    // What went on the wire, "Axial?5mm", also matches "Axial_5mm" at the PACS.
    const wire = await orthanc.rest.get(
      `/dicom-web/series?StudyInstanceUID=${ct.studyUid}&SeriesDescription=Axial?5mm`,
    );
    expect((wire.data as DicomDataset[]).map(seriesUid).sort()).toEqual(
      [ct.series[0].seriesUid, ct.series[1].seriesUid].sort(),
    );
  });
});
