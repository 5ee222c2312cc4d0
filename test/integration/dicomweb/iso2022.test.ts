/**
 * Studies in ISO 2022 character sets on a real Orthanc keep their text: hand-made `\ISO 2022 IR 87` and
 * `\ISO 2022 IR 58` studies keep their description, series description, bodySite, series start and instance
 * titles, and pydicom's charset files (chrH31/chrH32: IR 87 with IR 13; chrX1: UTF-8) come through the source
 * layer with their names. Orthanc 1.10 answers 400 when Specific Character Set (0008,0005) is asked for such a
 * study; the bridge no longer asks, and a row a PACS refuses for one attribute loses only that attribute.
 */
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { sourceSchema } from '../../../src/config/schema';
import { createPacsSource, type PacsSource } from '../../../src/dicomweb';
import { readString, Tag, valueOf } from '../../../src/dicom';
import { isBlocking, mapStudy, validateImagingStudy } from '../../../src/mapping';
import { startFaultProxy } from '../../harness/faultProxy';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { iso2022Studies, type Iso2022Study } from '../../fixtures/iso2022';
import { PYDICOM_DATA } from '../../fixtures/pydicomSamples';

let orthanc: OrthancServer;
let studies: Iso2022Study[];
const warnings: Array<{ obj: Record<string, unknown>; msg: string }> = [];
let pacs: PacsSource;
const cfg = (base: string) =>
  sourceSchema.parse({ id: 'iso2022', qidoBase: base, mapping: { patient: { nameGroup: 'ideographic' } } });

beforeAll(async () => {
  orthanc = await startOrthanc();
  studies = iso2022Studies();
  for (const s of studies) for (const f of s.files) await orthanc.upload(f);
  pacs = createPacsSource(cfg(orthanc.dicomWebBase), {
    logger: { warn: (obj, msg) => warnings.push({ obj: obj as Record<string, unknown>, msg }) },
  });
}, 120_000);
afterAll(() => orthanc?.stop());

async function mapped(studyUid: string) {
  const rows = await pacs.searchStudies({ StudyInstanceUID: studyUid }, { limit: 10, offset: 0 });
  const details = (await pacs.studyDetails([studyUid])).get(studyUid)!;
  const r = mapStudy({ study: rows[0], ...details }, cfg(orthanc.dicomWebBase));
  if (!r.ok) throw new Error(r.error.message);
  expect(validateImagingStudy(r.imagingStudy).filter(isBlocking)).toEqual([]);
  return r.imagingStudy;
}

test('Orthanc itself refuses 0008,0005 for these studies (the failure the bridge must not trigger)', async () => {
  for (const s of studies) {
    const res = await orthanc.rest.get(`/dicom-web/studies?0020000D=${s.study.studyUid}&includefield=00080005`, {
      validateStatus: () => true,
    });
    expect({ charset: s.charset, status: res.status }).toEqual({ charset: s.charset, status: 400 });
  }
});

test.each([0, 1])(
  'hand-made ISO 2022 study %i keeps description, series text, bodySite, start and titles',
  async (i) => {
    const s = studies[i];
    const r = await mapped(s.study.studyUid);
    expect(r.description).toBe(s.description);
    expect(r.subject.display).toBe(s.ideographicName.replace('^', ''));
    const series = r.series![0];
    expect(series.description).toBe(s.seriesDescription);
    expect(series.bodySite).toEqual({ system: 'http://snomed.info/sct', code: '69536005', display: 'Head' });
    expect(series.started).toBe('2024-03-15T10:35:00+08:00');
    expect(series.instance?.map((x) => x.title)).toEqual(['ORIGINAL\\PRIMARY\\AXIAL', 'ORIGINAL\\PRIMARY\\AXIAL']);
    expect(warnings).toEqual([]);
  },
);

test("pydicom's charset files come through the source layer with their names", async () => {
  // chrH32 (IR 13 with IR 87) is in too, though Orthanc 1.10 itself decodes its ideographic group wrongly (its own
  // /tags show the JIS bytes without their escapes): it must still map through the source layer, whatever its name.
  const expected: Record<string, string | undefined> = {
    'chrH31.dcm': '山田太郎',
    'chrH32.dcm': undefined,
    'chrX1.dcm': '王小東',
  };
  for (const [file, name] of Object.entries(expected)) {
    const answer = await orthanc.upload(readFileSync(path.join(PYDICOM_DATA, 'charset_files', file)));
    const tags = (await orthanc.rest.get(`/instances/${answer.ID}/tags?simplify`)).data as Record<string, string>;
    const r = await mapped(tags.StudyInstanceUID);
    expect(r.subject.display).toBeDefined();
    if (name) expect({ file, display: r.subject.display }).toEqual({ file, display: name });
  }
  expect(warnings).toEqual([]);
});

test('a row refused for one attribute loses only that attribute, and the source warns once', async () => {
  // Orthanc refuses 0008,0005 for such a row only when asked for it, which the bridge no longer does; the fault
  // proxy stands in for a PACS refusing another attribute for one study: 400 whenever Study Description is asked.
  const [a, b] = studies;
  const proxy = await startFaultProxy(orthanc.restUrl);
  try {
    proxy.inject({
      status: 400,
      times: Infinity,
      match: (req) => /includefield=[^&]*00081030/.test(req.path) && req.path.includes(a.study.studyUid),
    });
    const logged: string[] = [];
    const viaProxy = createPacsSource(cfg(proxy.via(orthanc.dicomWebBase)), {
      logger: { warn: (obj) => logged.push(String((obj as { attribute?: string }).attribute)) },
    });
    for (let round = 0; round < 2; round++) {
      const [row] = await viaProxy.searchStudies({ StudyInstanceUID: a.study.studyUid }, { limit: 10, offset: 0 });
      expect(row[Tag.StudyDescription]).toBeUndefined();
      // Everything else asked for is still there.
      expect(valueOf(readString(row, Tag.AccessionNumber))).toBe(a.study.accession);
      expect(valueOf(readString(row, Tag.StudyID))).toBe(a.study.studyId);
      expect(row[Tag.ReferringPhysicianName]).toBeDefined();
      const [other] = await viaProxy.searchStudies({ StudyInstanceUID: b.study.studyUid }, { limit: 10, offset: 0 });
      expect(valueOf(readString(other, Tag.StudyDescription))).toBe(b.description);
    }
    expect(logged).toEqual(['StudyDescription (0008,1030)']);
    // The second round left the remembered attribute out at once instead of bisecting again.
    const forA = proxy.requests.filter((r) => r.path.includes(a.study.studyUid));
    expect(forA.slice(-2).map((r) => r.injected ?? r.status)).toEqual([400, 200]);
    expect(forA[forA.length - 1].path).not.toContain('00081030');
  } finally {
    await proxy.stop();
  }
});
