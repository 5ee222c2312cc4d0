/**
 * Nothing truncated in silence (issue 21): on a real Orthanc whose LimitFindResults caps study and series
 * searches at 40 (offset included) and a source with serverLimit 40, series and instance searches page on
 * with `offset` past the limit, a study's instances are asked for series by series when the PACS caps
 * instance searches too, and a study the PACS still truncates says so (`StudyDetails.truncated`), as does
 * a live search it truncates (a warning, no total); a live search of a day of ~100 studies is split as the
 * sync splits it and answers every study with the right total.
 */
import type { Bundle, ImagingStudy, OperationOutcome } from 'fhir/r4';
import pLimit from 'p-limit';
import { parseConfig } from '../../../src/config';
import { createPacsSource, type PacsSource, type StudyDetails } from '../../../src/dicomweb';
import { readString, Tag, valueOf, type DicomDataset } from '../../../src/dicom';
import { createLogger } from '../../../src/log';
import { imagingStudyId } from '../../../src/mapping/ids';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { openSqliteStore } from '../../../src/state';
import { createSyncService } from '../../../src/sync';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import {
  generateCorpus,
  loadStudies,
  makeSeries,
  makeStudy,
  studyToDicomFiles,
  type SyntheticStudy,
} from '../../fixtures/synthetic';
import { allPages, apiSource, matchIds, serveApi, sourceConfig, type ServedApi } from '../api/helpers';

const CAP = 40;

function source(orthanc: OrthancServer, extra: Record<string, unknown> = {}): PacsSource {
  return createPacsSource(
    parseConfig({ sources: [{ id: 'orthanc', qidoBase: orthanc.dicomWebBase, serverLimit: CAP, ...extra }] })
      .sources[0],
    { retry: { baseMs: 50, maxMs: 500 } },
  );
}

/**
 * The files of a study with many instances, fast: dcmjs writes each series' first instance (about 2 ms a file),
 * and the others are that file with its SOP Instance UID replaced (makeInstance's UIDs all have one length).
 * They differ from studyToDicomFiles' only in InstanceNumber, which these tests do not read.
 */
function largeStudyFiles(study: SyntheticStudy): Buffer[] {
  return study.series.flatMap((series) => {
    const first = series.instances[0]!;
    const [template] = studyToDicomFiles({ ...study, series: [{ ...series, instances: [first] }] });
    const from = Buffer.from(first.sopInstanceUid);
    return series.instances.map((inst) => {
      const to = Buffer.from(inst.sopInstanceUid);
      if (to.length !== from.length) throw new Error('instance UIDs of one length expected');
      const file = Buffer.from(template!);
      for (let i = file.indexOf(from); i >= 0; i = file.indexOf(from, i + from.length)) to.copy(file, i);
      return file;
    });
  });
}

/** Every instance file of these studies, uploaded 4 at a time (loadStudies uploads one study's files one by one). */
async function uploadInParallel(orthanc: OrthancServer, studies: SyntheticStudy[]): Promise<void> {
  const limit = pLimit(4);
  await Promise.all(studies.flatMap(largeStudyFiles).map((file) => limit(() => orthanc.upload(file))));
}

const sopUids = (list: DicomDataset[]) => list.map((d) => valueOf(readString(d, Tag.SOPInstanceUID))!).sort();
const factSops = (s: SyntheticStudy) => s.series.flatMap((x) => x.instances.map((i) => i.sopInstanceUid)).sort();
const outcomes = (b: Bundle) =>
  (b.entry ?? []).filter((e) => e.search?.mode === 'outcome').map((e) => e.resource as OperationOutcome);

/** Studies of one day, each with a StudyTime: Orthanc 1.10 has no Empty Value Matching (see studySearch.ts). */
function dayOfStudies(seed: number, day: string, n: number): SyntheticStudy[] {
  return generateCorpus({
    seed,
    studies: n,
    days: { from: day, count: 1 },
    undated: 0,
    maxSeries: 1,
    maxInstances: 1,
  }).map((s, i) => ({ ...s, studyTime: s.studyTime ?? `${String(i % 24).padStart(2, '0')}3000` }));
}

describe('Orthanc with LimitFindResults 40 (study and series searches), serverLimit 40', () => {
  let orthanc: OrthancServer;
  // The tester's CT of 102 instances, and a thin-slice CT of 2,500.
  const ct102 = makeStudy({
    studyDate: '20240105',
    series: [makeSeries({ instances: 60 }), makeSeries({ instances: 42 })],
  });
  const ct2500 = makeStudy({
    studyDate: '20240105',
    series: [makeSeries({ instances: 1250 }), makeSeries({ instances: 1000 }), makeSeries({ instances: 250 })],
  });
  const manySeries = makeStudy({
    studyDate: '20240105',
    series: Array.from({ length: 45 }, () => makeSeries({ instances: 1 })),
  });
  const day = dayOfStudies(21, '20240104', 113);
  let api: ServedApi;

  beforeAll(async () => {
    orthanc = await startOrthanc({ limitFindResults: CAP });
    const started = Date.now();
    await uploadInParallel(orthanc, [ct102, ct2500, manySeries]);
    await loadStudies(orthanc, day, 8);
    // Kept in view: generating and loading ~2,800 instances must stay a few seconds.
    process.stdout.write(`truncation.test: fixtures loaded in ${Date.now() - started} ms\n`);
    const cfg = sourceConfig('orthanc', orthanc.dicomWebBase, { serverLimit: CAP, pageSize: CAP });
    api = await serveApi({
      config: { auth: { type: 'none' }, maxCount: 50, rateLimit: { enabled: false }, cache: { enabled: false } },
      sources: [apiSource(cfg)],
    });
  }, 120_000);
  afterAll(async () => {
    await api?.close();
    await orthanc?.stop();
  });

  it('a backfill writes both studies with every instance; the study of 45 series fails as truncated-by-pacs', async () => {
    const store = openSqliteStore(':memory:');
    let pacs: PacsSource | undefined;
    const sync = createSyncService({
      config: { sources: [sourceConfig('orthanc', orthanc.dicomWebBase, { serverLimit: CAP })] },
      store,
      sinks: [createEmbeddedSink(store)],
      logger: createLogger({ level: 'silent' }),
      sourceFactory: (c) => (pacs = createPacsSource(c)),
    });
    try {
      const run = await sync.backfill('orthanc', '20240105', '20240105');
      expect(run).toMatchObject({ status: 'partial', counts: { found: 3, written: 2, failed: 1 } });
      for (const fact of [ct102, ct2500]) {
        const r = (await store.resources.get<ImagingStudy>('ImagingStudy', imagingStudyId(fact.studyUid)))!;
        expect(
          r
            .series!.flatMap((se) => se.instance ?? [])
            .map((i) => i.uid)
            .sort(),
        ).toEqual(factSops(fact));
      }
      const failed = await store.studies.get('orthanc', manySeries.studyUid);
      expect(failed).toMatchObject({ status: 'failing', reason: 'truncated-by-pacs', resourceId: null });
      expect(failed!.lastError).toMatch(/\(41 of 45 series listed\)/);
      // One batched instance search in pages of 40 for the three studies (2,647 instances), no more.
      expect(pacs!.stats.requests.instances).toBeLessThanOrEqual(Math.ceil(2647 / CAP) + 1);
    } finally {
      store.close();
    }
  });

  it('a study of 45 series, past the series cap, is incomplete and says so', async () => {
    const s = source(orthanc);
    const d = (await s.studyDetails([manySeries.studyUid], { instances: false })).get(manySeries.studyUid)!;
    expect(d.truncated).toEqual(['series']);
    expect(d.series).toHaveLength(CAP + 1);
    // Without the cap configured the same answer looks complete: why serverLimit matters.
    const blind = source(orthanc, { serverLimit: undefined });
    const b = (await blind.studyDetails([manySeries.studyUid], { instances: false })).get(manySeries.studyUid)!;
    expect(b.truncated).toBeUndefined();
  });

  it('a live search of a day of 113 studies returns every one, with the right total', async () => {
    const { ids, pages } = await allPages(api.http, '/ImagingStudy?started=2024-01-04&_count=25');
    expect([...ids].sort()).toEqual(day.map((s) => imagingStudyId(s.studyUid)).sort());
    expect(pages).toHaveLength(Math.ceil(day.length / 25));
    for (const p of pages) {
      expect(p.total).toBe(day.length);
      expect(outcomes(p)).toEqual([]);
    }
    const count = await api.http.get<Bundle>('/ImagingStudy?started=2024-01-04&_summary=count');
    expect(count.data.total).toBe(day.length);
  });

  it('a live search with no closed date range to split warns that it is truncated and gives no total', async () => {
    const q = '/ImagingStudy?started=ge2024-01-01';
    const res = await api.http.get<Bundle>(`${q}&_count=50`);
    expect(res.status).toBe(200);
    expect(res.data.total).toBeUndefined();
    const [first, ...others] = outcomes(res.data).flatMap((o) => o.issue);
    expect(first).toMatchObject({ severity: 'warning', code: 'incomplete' });
    expect(first!.diagnostics).toMatch(/truncates this search \(studies 20240101-\)/);
    // Other issues only for the study of 45 series, when the PACS listed it (next test).
    for (const o of others) expect(o.diagnostics).toContain(`${manySeries.studyUid}: truncated-by-pacs`);
    expect(matchIds(res.data).length).toBeLessThanOrEqual(CAP + 1);
    const count = await api.http.get(`${q}&_summary=count`);
    expect(count.status).toBe(400);
    expect(JSON.stringify(count.data)).toMatch(/truncates this search/);
  });

  it('a live search past maxCountScan, read in PACS order, warns that a capping PACS may end it early', async () => {
    const cfg = sourceConfig('orthanc', orthanc.dicomWebBase, { serverLimit: CAP, pageSize: CAP });
    const small = await serveApi({
      config: { auth: { type: 'none' }, maxCountScan: 50, rateLimit: { enabled: false }, cache: { enabled: false } },
      sources: [apiSource(cfg)],
    });
    try {
      const res = await small.http.get<Bundle>('/ImagingStudy?started=2024-01-04&_count=10');
      expect(res.status).toBe(200);
      expect(res.data.total).toBeUndefined();
      expect(matchIds(res.data)).toHaveLength(10);
      expect(outcomes(res.data).flatMap((o) => o.issue)).toEqual([
        expect.objectContaining({ code: 'incomplete', diagnostics: expect.stringMatching(/caps searches at 40/) }),
      ]);
    } finally {
      await small.close();
    }
  });

  it('a live search or read never shows a study the PACS truncates as if whole', async () => {
    const res = await api.http.get<Bundle>(`/ImagingStudy?_id=${imagingStudyId(manySeries.studyUid)}`);
    expect(res.status).toBe(200);
    expect(matchIds(res.data)).toEqual([]);
    const issues = outcomes(res.data).flatMap((o) => o.issue);
    expect(issues).toEqual([expect.objectContaining({ severity: 'warning' })]);
    expect(issues[0]!.diagnostics).toMatch(/truncated-by-pacs: .*\(41 of 45 series listed\)/);
    const read = await api.http.get(`/ImagingStudy/${imagingStudyId(manySeries.studyUid)}`);
    expect(read.status).toBe(500);
    expect(JSON.stringify(read.data)).toContain('truncated-by-pacs');
  });
});

describe('Orthanc capping instance searches too (LimitFindInstances 40), serverLimit 40', () => {
  let orthanc: OrthancServer;
  // Every series under the cap: listed series by series.
  const bySeries = makeStudy({ studyDate: '20240106', series: [34, 34, 34].map((n) => makeSeries({ instances: n })) });
  // One series past the cap: truncated at the finest split.
  const tooLarge = makeStudy({
    studyDate: '20240106',
    series: [makeSeries({ instances: 60 }), makeSeries({ instances: 5 })],
  });

  beforeAll(async () => {
    orthanc = await startOrthanc({ limitFindResults: CAP, extra: { LimitFindInstances: CAP } });
    await uploadInParallel(orthanc, [bySeries, tooLarge]);
  }, 60_000);
  afterAll(() => orthanc?.stop());

  const detailsOf = async (s: PacsSource, study: SyntheticStudy): Promise<StudyDetails> =>
    (await s.studyDetails([study.studyUid])).get(study.studyUid)!;

  it('a study whose instance search is capped is listed series by series, whole', async () => {
    const s = source(orthanc);
    const d = await detailsOf(s, bySeries);
    expect(d.truncated).toBeUndefined();
    expect(sopUids(d.instances)).toEqual(factSops(bySeries));
  });

  it('a series past the cap leaves the study truncated, with the instances it could list', async () => {
    const s = source(orthanc);
    const d = await detailsOf(s, tooLarge);
    expect(d.truncated).toEqual(['instances']);
    expect(d.instances.length).toBeLessThan(65);
    expect(d.instances.length).toBeGreaterThan(CAP);
    // Batched with a complete study, only the truncated one says so.
    const both = await s.studyDetails([bySeries.studyUid, tooLarge.studyUid]);
    expect(both.get(bySeries.studyUid)!.truncated).toBeUndefined();
    expect(both.get(tooLarge.studyUid)!.truncated).toEqual(['instances']);
  });
});
