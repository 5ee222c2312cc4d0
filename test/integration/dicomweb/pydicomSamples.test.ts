/**
 * Real DICOM files no one here wrote (Debian's pydicom samples): every file Orthanc accepts is
 * found by the source layer, with the right study, series and instance UIDs.
 */
import { parseConfig } from '../../../src/config';
import { createPacsSource } from '../../../src/dicomweb';
import { readString, Tag, valueOf, type DicomDataset } from '../../../src/dicom';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { loadPydicomSamples, studiesFromSamples, type SampleFact } from '../../fixtures/pydicomSamples';

const str = (ds: DicomDataset, tag: string) => valueOf(readString(ds, tag));

describe('pydicom sample files', () => {
  let orthanc: OrthancServer;
  let facts: SampleFact[];

  beforeAll(async () => {
    orthanc = await startOrthanc();
    facts = await loadPydicomSamples(orthanc);
  }, 120_000);
  afterAll(() => orthanc?.stop());

  it('finds every accepted sample with the right UIDs (dated by window, the rest by the undated sweep)', async () => {
    const expected = studiesFromSamples(facts);
    expect(expected.length).toBeGreaterThan(20);
    const s = createPacsSource(
      parseConfig({ sources: [{ id: 'samples', qidoBase: orthanc.dicomWebBase, pageSize: 25 }] }).sources[0],
    );
    const dated = await s.findStudies({ from: '00010101', to: '99991231' });
    const undated = await s.findUndatedStudies();
    const found = [...new Set([...dated, ...undated].map((d) => str(d, Tag.StudyInstanceUID)!))].sort();
    expect(found).toEqual(expected.map((e) => e.studyUid).sort());
    // Only a study with a malformed StudyDate (e.g. ACR-NEMA "1997.04.24") may be in both lists:
    // a server may still match it as text, and the undated sweep keeps it because narrower ranges miss it.
    const undatedUids = new Set(undated.map((d) => str(d, Tag.StudyInstanceUID)));
    for (const d of dated.filter((x) => undatedUids.has(str(x, Tag.StudyInstanceUID)))) {
      expect(str(d, Tag.StudyDate)).not.toMatch(/^\d{8}$/);
    }

    const details = await s.studyDetails(found);
    for (const study of expected) {
      const d = details.get(study.studyUid)!;
      const series = [...new Set(d.series.map((x) => str(x, Tag.SeriesInstanceUID)))].sort();
      expect({ study: study.studyUid, series }).toEqual({
        study: study.studyUid,
        series: study.series.map((x) => x.uid).sort(),
      });
      const instances = [...new Set(d.instances.map((x) => str(x, Tag.SOPInstanceUID)))].sort();
      expect({ study: study.studyUid, instances }).toEqual({
        study: study.studyUid,
        instances: study.series.flatMap((x) => x.instances).sort(),
      });
    }
  });

  it('a page of an on-demand search holds every study, even those Orthanc cannot render in full', async () => {
    // The charset samples make Orthanc answer 400 to a whole page with the full includefield list.
    const s = createPacsSource(
      parseConfig({ sources: [{ id: 'samples', qidoBase: orthanc.dicomWebBase }] }).sources[0],
    );
    const rows = await s.searchStudies({}, { limit: 1000, offset: 0 });
    const uids = [...new Set(rows.map((d) => str(d, Tag.StudyInstanceUID)!))].sort();
    expect(uids).toEqual(
      studiesFromSamples(facts)
        .map((e) => e.studyUid)
        .sort(),
    );
  });
});
