/**
 * The fixtures other tests build on: the synthetic generator's facts must be exactly what a real Orthanc's QIDO-RS
 * answers after upload (no invented StudyTime, Chinese names intact, undated studies undated), and the pydicom
 * samples' facts must match what Orthanc serves.
 */
import axios, { type AxiosInstance } from 'axios';
import { startOrthanc, type OrthancServer } from '../harness/orthanc';
import {
  ALL_MODALITIES,
  ENHANCED_SR_SOP_CLASS,
  SOP_CLASS,
  corpusCounts,
  generateCorpus,
  instanceCount,
  loadStudies,
  makeSeries,
  makeStudy,
  modalitiesInStudy,
  studiesPerDay,
  studyToDicomFiles,
  undatedStudies,
  type SyntheticSeries,
  type SyntheticStudy,
} from '../fixtures/synthetic';
import {
  loadPydicomSamples,
  pydicomSampleFiles,
  qidoStudyRowCount,
  studiesFromSamples,
  type SampleFact,
} from '../fixtures/pydicomSamples';

type Row = Record<string, { vr: string; Value?: unknown[] }>;

/** The attribute's values, or undefined when the attribute is absent or has no value. */
function values(row: Row, tag: string): unknown[] | undefined {
  const v = row[tag]?.Value;
  return v && v.length > 0 ? v : undefined;
}
function first(row: Row, tag: string): unknown {
  return values(row, tag)?.[0];
}
/** A PN value as "Alphabetic=Ideographic" (Orthanc sends an empty Alphabetic group for ideographic-only names). */
function pn(row: Row, tag: string): string | undefined {
  const v = first(row, tag) as { Alphabetic?: string; Ideographic?: string } | undefined;
  if (!v) return undefined;
  return v.Ideographic ? `${v.Alphabetic ?? ''}=${v.Ideographic}` : v.Alphabetic || undefined;
}

const STUDY_FIELDS = ['00081030', '00080201', '00081060', '00401002', '00081040', '00100021', '00080030'];
const SERIES_FIELDS = ['0008103E', '00080021', '00080031', '00180015', '00200060', '00081050', '00081070'];
const includes = (tags: string[]) => tags.map((t) => `includefield=${t}`).join('&');

describe('synthetic corpus generator', () => {
  const opts = { seed: 11, studies: 60, days: { from: '20240301', count: 4 }, undated: 4 };
  const corpus = generateCorpus(opts);

  it('is deterministic for a seed and disjoint across seeds', () => {
    expect(generateCorpus(opts)).toEqual(corpus);
    const other = new Set(generateCorpus({ ...opts, seed: 12 }).map((s) => s.studyUid));
    expect(corpus.filter((s) => other.has(s.studyUid))).toEqual([]);
  });

  it('covers every modality with its storage SOP class, and Chinese names', () => {
    const series = corpus.flatMap((s) => s.series);
    expect(new Set(series.map((s) => s.modality))).toEqual(new Set(ALL_MODALITIES));
    for (const s of series) {
      for (const i of s.instances) {
        const allowed: string[] = s.modality === 'SR' ? [SOP_CLASS.SR, ENHANCED_SR_SOP_CLASS] : [SOP_CLASS[s.modality]];
        expect(allowed).toContain(i.sopClassUid);
      }
    }
    expect(corpus.some((s) => s.patient.ideographic && s.patient.alphabetic)).toBe(true);
    expect(corpus.some((s) => s.patient.ideographic && !s.patient.alphabetic)).toBe(true);
    expect(corpus.some((s) => s.series.length > 1)).toBe(true);
    expect(corpus.some((s) => s.series.some((x) => x.instances.length > 1))).toBe(true);
  });

  it('mixes time forms, offsets and missing attributes, with the requested undated studies', () => {
    expect(undatedStudies(corpus)).toHaveLength(4);
    const dated = corpus.filter((s) => s.studyDate);
    expect(dated.some((s) => s.studyTime === undefined)).toBe(true);
    expect(dated.some((s) => /^\d{6}\.\d{1,6}$/.test(s.studyTime ?? ''))).toBe(true);
    expect(dated.some((s) => /^\d{6}$/.test(s.studyTime ?? ''))).toBe(true);
    expect(dated.some((s) => s.tzOffset)).toBe(true);
    expect(dated.some((s) => !s.tzOffset)).toBe(true);
    for (const key of ['accession', 'description', 'referrer', 'procedureCode', 'studyId'] as const) {
      expect(corpus.some((s) => s[key] === undefined)).toBe(true);
      expect(corpus.some((s) => s[key] !== undefined)).toBe(true);
    }
    // Round-robin over the window: 56 dated studies over 4 days.
    expect([...studiesPerDay(corpus)].sort()).toEqual([
      ['', 4],
      ['20240301', 14],
      ['20240302', 14],
      ['20240303', 14],
      ['20240304', 14],
    ]);
  });

  it('makes valid, unique UIDs', () => {
    const uids = [...corpus, makeStudy()].flatMap((s) => [
      s.studyUid,
      ...s.series.flatMap((x) => [x.seriesUid, ...x.instances.map((i) => i.sopInstanceUid)]),
    ]);
    expect(new Set(uids).size).toBe(uids.length);
    for (const uid of uids) {
      expect(uid).toMatch(/^2\.25\.[1-9]\d*$/);
      expect(uid.length).toBeLessThanOrEqual(64);
    }
  });

  it('writes one Part 10 file per instance', () => {
    const study = corpus[0]!;
    const files = studyToDicomFiles(study);
    expect(files).toHaveLength(instanceCount(study));
    for (const f of files) expect(f.subarray(128, 132).toString('latin1')).toBe('DICM');
  });
});

describe('fixtures in a real Orthanc', () => {
  let orthanc: OrthancServer;
  let web: AxiosInstance;
  const corpus = generateCorpus({ seed: 11, studies: 60, days: { from: '20240301', count: 4 }, undated: 4 });
  // Precise studies for the facts most easily broken by a PACS filling in blanks.
  const dateNoTime = makeStudy({
    studyTime: undefined,
    tzOffset: undefined,
    series: [makeSeries({ modality: 'MR', instances: 3 })],
  });
  const fractional = makeStudy({
    studyTime: '235959.999999',
    tzOffset: '-0500',
    patient: { id: 'P-IDEO', ideographic: '林^美玲' },
    readingPhysician: '=吳^國華',
    series: [
      makeSeries({ modality: 'CT', seriesDate: '20240315', seriesTime: '1015' }),
      makeSeries({ modality: 'KO', instances: 1 }),
    ],
  });
  const undated = makeStudy({ studyDate: undefined, studyTime: undefined, tzOffset: undefined });
  const precise = [dateNoTime, fractional, undated];
  const all = [...corpus, ...precise];
  let rows: Map<string, Row>;
  let samples: SampleFact[];

  beforeAll(async () => {
    orthanc = await startOrthanc();
    web = axios.create({ baseURL: orthanc.dicomWebBase });
    await loadStudies(orthanc, all);
    samples = await loadPydicomSamples(orthanc);
    const res = await web.get<Row[]>(`/studies?${includes(STUDY_FIELDS)}`);
    rows = new Map(res.data.map((r) => [first(r, '0020000D') as string, r]));
  });
  afterAll(async () => {
    await orthanc?.stop();
  });

  it('holds every synthetic study, series and instance', async () => {
    const counts = corpusCounts(all);
    const stats = (await orthanc.rest.get('/statistics')).data as { CountStudies: number; CountInstances: number };
    const sampleInstances = new Set(samples.filter((f) => f.accepted).map((f) => f.orthancId)).size;
    expect(stats.CountInstances).toBe(counts.instances + sampleInstances);
    expect(rows.size).toBeGreaterThanOrEqual(counts.studies);
    for (const s of all) expect(rows.has(s.studyUid)).toBe(true);
  });

  it('answers a StudyDate window with exactly the dated studies in it', async () => {
    const res = await web.get<Row[]>('/studies?StudyDate=20240301-20240304');
    const found = res.data.map((r) => first(r, '0020000D')).sort();
    expect(found).toEqual(
      corpus
        .filter((s) => s.studyDate)
        .map((s) => s.studyUid)
        .sort(),
    );
  });

  it('returns study attributes exactly as the facts say (absent stays absent)', () => {
    for (const s of all) {
      const row = rows.get(s.studyUid)!;
      const got = {
        studyDate: first(row, '00080020'),
        studyTime: first(row, '00080030'),
        tzOffset: first(row, '00080201'),
        patientId: first(row, '00100020'),
        patientName: pn(row, '00100010'),
        issuer: first(row, '00100021'),
        birthDate: first(row, '00100030'),
        sex: first(row, '00100040'),
        accession: first(row, '00080050'),
        studyId: first(row, '00200010'),
        description: first(row, '00081030'),
        referrer: pn(row, '00080090'),
        readingPhysician: pn(row, '00081060'),
        reason: first(row, '00401002'),
        department: first(row, '00081040'),
        modalities: values(row, '00080061'),
        series: first(row, '00201206'),
        instances: first(row, '00201208'),
      };
      const p = s.patient;
      const expected = {
        studyDate: s.studyDate,
        studyTime: s.studyTime,
        tzOffset: s.tzOffset,
        patientId: p.id,
        patientName: p.ideographic ? `${p.alphabetic ?? ''}=${p.ideographic}` : p.alphabetic,
        issuer: p.issuer,
        birthDate: p.birthDate,
        sex: p.sex,
        accession: s.accession,
        studyId: s.studyId,
        description: s.description,
        referrer: s.referrer,
        readingPhysician: s.readingPhysician,
        reason: s.reason,
        department: s.department,
        modalities: modalitiesInStudy(s),
        series: s.series.length,
        instances: instanceCount(s),
      };
      expect({ uid: s.studyUid, ...got }).toEqual({ uid: s.studyUid, ...expected });
    }
  });

  it('keeps Chinese names intact and invents no StudyTime or StudyDate', () => {
    expect(first(rows.get(dateNoTime.studyUid)!, '00100010')).toEqual({
      Alphabetic: 'Chen^Da Wen',
      Ideographic: '陳^大文',
    });
    expect(pn(rows.get(fractional.studyUid)!, '00100010')).toBe('=林^美玲');
    expect(rows.get(dateNoTime.studyUid)!['00080030']?.Value ?? []).toEqual([]);
    expect(first(rows.get(fractional.studyUid)!, '00080030')).toBe('235959.999999');
    expect(rows.get(undated.studyUid)!['00080020']?.Value ?? []).toEqual([]);
    for (const s of undatedStudies(corpus)) expect(values(rows.get(s.studyUid)!, '00080020')).toBeUndefined();
  });

  it('returns series and instances exactly as the facts say', async () => {
    for (const s of all) {
      const series = (await web.get<Row[]>(`/studies/${s.studyUid}/series?${includes(SERIES_FIELDS)}`)).data;
      const got = series
        .map((r) => ({
          seriesUid: first(r, '0020000E'),
          number: first(r, '00200011'),
          modality: first(r, '00080060'),
          description: first(r, '0008103E'),
          seriesDate: first(r, '00080021'),
          seriesTime: first(r, '00080031'),
          bodyPart: first(r, '00180015'),
          laterality: first(r, '00200060'),
          performer: pn(r, '00081050'),
          operator: pn(r, '00081070'),
          instances: first(r, '00201209'),
        }))
        .sort((a, b) => String(a.seriesUid).localeCompare(String(b.seriesUid)));
      const expected = s.series
        .map((x: SyntheticSeries) => ({
          seriesUid: x.seriesUid,
          number: x.number,
          modality: x.modality,
          description: x.description,
          seriesDate: x.seriesDate,
          seriesTime: x.seriesTime,
          bodyPart: x.bodyPart,
          laterality: x.laterality,
          performer: x.performer,
          operator: x.operator,
          instances: x.instances.length,
        }))
        .sort((a, b) => a.seriesUid.localeCompare(b.seriesUid));
      expect(got).toEqual(expected);

      const instances = (await web.get<Row[]>(`/studies/${s.studyUid}/instances`)).data;
      const gotInstances = instances
        .map((r) => [first(r, '0020000E'), first(r, '00080018'), first(r, '00080016'), first(r, '00200013')])
        .sort((a, b) => String(a[1]).localeCompare(String(b[1])));
      const expectedInstances = s.series
        .flatMap((x) => x.instances.map((i) => [x.seriesUid, i.sopInstanceUid, i.sopClassUid, i.number]))
        .sort((a, b) => String(a[1]).localeCompare(String(b[1])));
      expect(gotInstances).toEqual(expectedInstances);
    }
  });

  it('serves sequences (procedure code, accession issuer, document title) through WADO-RS metadata', async () => {
    const withSequences = all.filter((s: SyntheticStudy) => s.procedureCode || s.accessionIssuer).slice(0, 8);
    expect(withSequences.length).toBeGreaterThan(0);
    for (const s of withSequences) {
      const meta = (await web.get<Row[]>(`/studies/${s.studyUid}/metadata`)).data;
      const item = (first(meta[0]!, '00081032') ?? undefined) as Row | undefined;
      expect(item && [first(item, '00080100'), first(item, '00080102'), first(item, '00080104')]).toEqual(
        s.procedureCode && [s.procedureCode.code, s.procedureCode.scheme, s.procedureCode.meaning],
      );
      const issuer = first(meta[0]!, '00080051') as Row | undefined;
      expect(issuer && first(issuer, '00400031')).toEqual(s.accessionIssuer);
    }
    const docs = all.flatMap((s) =>
      s.series.filter((x) => x.modality === 'SR' || x.modality === 'KO').map((x) => ({ s, x })),
    );
    const { s, x } = docs.find(({ x }) => x.instances[0]!.documentTitle)!;
    const meta = (await web.get<Row[]>(`/studies/${s.studyUid}/series/${x.seriesUid}/metadata`)).data;
    const title = first(
      meta.find((m) => first(m, '00080018') === x.instances[0]!.sopInstanceUid)!,
      '0040A043',
    ) as Row;
    expect(first(title, '00080104')).toBe(x.instances[0]!.documentTitle!.meaning);
  });

  it('loads most pydicom samples, each with the UIDs Orthanc serves', async () => {
    const files = pydicomSampleFiles();
    expect(samples).toHaveLength(files.length);
    const accepted = samples.filter((f) => f.accepted);
    expect(files.length).toBeGreaterThan(150);
    expect(accepted.length).toBeGreaterThan(files.length * 0.8);
    for (const f of samples.filter((x) => !x.accepted)) expect(f.reason).toBeTruthy();
    for (const f of accepted) {
      expect([f.studyUid, f.seriesUid, f.sopInstanceUid, f.sopClassUid].every(Boolean)).toBe(true);
    }
    // The whole Orthanc: synthetic studies plus one QIDO row per Orthanc study of the samples.
    expect(rows.size + (await duplicateStudyRows())).toBe(all.length + qidoStudyRowCount(samples));

    for (const study of studiesFromSamples(samples)) {
      const instances = (await web.get<Row[]>(`/studies/${study.studyUid}/instances`)).data;
      const got = new Map<string, Set<string>>();
      for (const r of instances) {
        const series = first(r, '0020000E') as string;
        if (!got.has(series)) got.set(series, new Set());
        got.get(series)!.add(first(r, '00080018') as string);
      }
      expect({
        study: study.studyUid,
        series: [...got]
          .map(([uid, i]) => ({ uid, instances: [...i].sort() }))
          .sort((a, b) => a.uid.localeCompare(b.uid)),
      }).toEqual({
        study: study.studyUid,
        series: study.series,
      });
    }
  });

  /** QIDO rows beyond the first for a Study UID (the rows map keeps one per UID). */
  async function duplicateStudyRows(): Promise<number> {
    const res = await web.get<Row[]>('/studies');
    return res.data.length - new Set(res.data.map((r) => first(r, '0020000D'))).size;
  }
});
