/**
 * One contract for every PacsSource (pacsSources.ts): the in-memory double the fast sync tests use and the real
 * DicomwebSource against a real Orthanc, loaded with the same synthetic studies. Each source is checked against
 * the fixtures' facts (windows, undated studies, lookups by UID and UID list, paging, details and their counts,
 * WADO-RS metadata); then the double's answers are compared with Orthanc's, normalised to the attributes the
 * mapper reads (Orthanc adds others), so the double cannot drift from real behaviour unnoticed.
 */
import { WindowOverflowError, type PacsSource } from '../../../src/dicomweb';
import {
  attributesOf,
  describeTag,
  readString,
  studyUidOf,
  Tag,
  valueOf,
  type AttributeLevel,
  type DicomDataset,
} from '../../../src/dicom';
import {
  generateCorpus,
  makeInstance,
  makeSeries,
  makeStudy,
  SOP_CLASS,
  SR_TITLE,
  studiesBetween,
  undatedStudies,
  type SyntheticStudy,
} from '../../fixtures/synthetic';
import { canonicalJson } from '../../../src/mapping/canonical';
import { pacsSources } from './pacsSources';

const CORPUS_DAYS = ['20240101', '20240102', '20240103', '20240104'];
const corpus = generateCorpus({ seed: 21, studies: 24, days: { from: '20240101', count: 4 }, undated: 3 });

/** One Study UID under two patients: a PACS keeps two studies, so it lists two rows. */
const TWO_PATIENTS_UID = '2.25.5550001';
const twoPatients = [
  makeStudy({ studyUid: TWO_PATIENTS_UID, studyDate: '20240201', patient: { id: 'P-A', alphabetic: 'Lin^Ya Ting' } }),
  makeStudy({
    studyUid: TWO_PATIENTS_UID,
    studyDate: '20240201',
    patient: { id: 'P-B', alphabetic: 'Wu^Chia Hao' },
    series: [makeSeries({ modality: 'MR', instances: 3 })],
  }),
];
/** One Study UID and Patient ID under two issuers: Orthanc keeps one study; each series names its own issuer. */
const TWO_ISSUERS_UID = '2.25.5550002';
const twoIssuers = ['TWHOSP', 'OTHERHOSP'].map((issuer, i) =>
  makeStudy({
    studyUid: TWO_ISSUERS_UID,
    studyDate: '20240202',
    patient: { id: 'Q-1', issuer, alphabetic: 'Chen^Mei', sex: 'F', birthDate: '19700101' },
    series: [makeSeries({ modality: i === 0 ? 'CT' : 'MR', instances: 2 })],
  }),
);
/** Every attribute the fixtures can carry, sequences included (which QIDO leaves out and metadata has). */
const full = makeStudy({
  studyDate: '20240203',
  accessionIssuer: 'TW-HOSP-A-RIS',
  readingPhysician: 'Lin^Shu Hui=林^淑惠',
  reason: '頭痛',
  reasonCode: { code: 'R51', scheme: 'I10', meaning: 'Headache' },
  department: '放射診斷科',
  patient: {
    id: 'P-FULL',
    issuer: 'TW-HOSP-A',
    issuerQualifier: { universalEntityId: '2.16.886.101', type: 'ISO' },
    alphabetic: 'Chang^Chun Chieh',
    ideographic: '張^俊傑',
    birthDate: '19800202',
    sex: 'M',
  },
  series: [
    makeSeries({
      modality: 'MR',
      description: 'T1 axial',
      seriesDate: '20240203',
      seriesTime: '101010',
      bodyPart: 'BRAIN',
      laterality: 'L',
      performer: 'Ho^Wei=何^偉',
      operator: 'Jones^Amy',
      instances: [makeInstance({ sopClassUid: SOP_CLASS.MR, imageType: ['ORIGINAL', 'PRIMARY'], contentLabel: 'T1' })],
    }),
    makeSeries({
      modality: 'SR',
      number: 2,
      instances: [makeInstance({ sopClassUid: SOP_CLASS.SR, documentTitle: SR_TITLE, contentLabel: 'REPORT' })],
    }),
  ],
});
const STUDIES: SyntheticStudy[] = [...corpus, ...twoPatients, ...twoIssuers, full];
const ALL_DATED = { from: '20240101', to: '20240203' };

/** What a PACS lists a study row by: its UID and Patient ID (a UID under two patients is two rows). */
const rowKey = (uid: string, patientId: string | undefined) => `${uid} ${patientId ?? ''}`;
const rowKeysOf = (rows: DicomDataset[]) =>
  rows.map((ds) => rowKey(studyUidOf(ds) ?? '', valueOf(readString(ds, Tag.PatientID)))).sort();
const expectedKeys = (studies: readonly SyntheticStudy[]) => [
  ...new Set(studies.map((s) => rowKey(s.studyUid, s.patient.id))),
];
const sorted = (keys: string[]) => [...keys].sort();

/** The fixture studies a PACS keeps as one study (same UID and Patient ID). */
function partsOf(uid: string, patientId?: string): SyntheticStudy[] {
  return STUDIES.filter((s) => s.studyUid === uid && (patientId === undefined || s.patient.id === patientId));
}

const number = (ds: DicomDataset, tag: string) => ds[tag]?.Value?.[0];
const texts = (ds: DicomDataset, tag: string) => (ds[tag]?.Value ?? []).map(String);

const sources = pacsSources();
const running = new Map<string, PacsSource>();

beforeAll(async () => {
  await Promise.all(sources.map(async (s) => running.set(s.name, await s.setUp(STUDIES))));
}, 120000);

afterAll(async () => {
  await Promise.all(sources.map((s) => s.tearDown()));
});

describe.each(sources.map((s) => s.name))('PacsSource contract: %s', (name) => {
  const source = () => running.get(name)!;

  it('lists every study of a StudyDate window, each once, and only those', async () => {
    for (const day of CORPUS_DAYS) {
      const rows = await source().findStudies({ from: day, to: day });
      expect(rowKeysOf(rows)).toEqual(sorted(expectedKeys(studiesBetween(STUDIES, day, day))));
    }
    const all = await source().findStudies(ALL_DATED);
    expect(rowKeysOf(all)).toEqual(sorted(expectedKeys(studiesBetween(STUDIES, ALL_DATED.from, ALL_DATED.to))));
    expect(await source().findStudies({ from: '20230101', to: '20231231' })).toEqual([]);
  });

  it('lists a whole search by StudyDate (a day, a closed range) as a window listing does, nothing truncated', async () => {
    const day = await source().listStudies({ StudyDate: CORPUS_DAYS[1]! });
    expect(rowKeysOf(day.datasets)).toEqual(
      sorted(expectedKeys(studiesBetween(STUDIES, CORPUS_DAYS[1]!, CORPUS_DAYS[1]!))),
    );
    const range = await source().listStudies({ StudyDate: `${CORPUS_DAYS[0]}-${CORPUS_DAYS[2]}` });
    expect(rowKeysOf(range.datasets)).toEqual(
      sorted(expectedKeys(studiesBetween(STUDIES, CORPUS_DAYS[0]!, CORPUS_DAYS[2]!))),
    );
    expect([day.truncated, range.truncated]).toEqual([[], []]);
  });

  it('refuses a window that is not two DICOM dates in order', async () => {
    await expect(source().findStudies({ from: '2024-01-01', to: '20240102' })).rejects.toBeInstanceOf(RangeError);
    await expect(source().findStudies({ from: '20240102', to: '20240101' })).rejects.toBeInstanceOf(RangeError);
  });

  it('stops a window listing past its maxStudies with a WindowOverflowError', async () => {
    await expect(source().findStudies(ALL_DATED, {}, { maxStudies: 3 })).rejects.toBeInstanceOf(WindowOverflowError);
    const all = await source().findStudies(ALL_DATED, {}, { maxStudies: 1000 });
    expect(all.length).toBe(expectedKeys(studiesBetween(STUDIES, ALL_DATED.from, ALL_DATED.to)).length);
  });

  it('narrows a window by the sync filter (ModalitiesInStudy)', async () => {
    const rows = await source().findStudies(ALL_DATED, { ModalitiesInStudy: 'MR' });
    const withMr = studiesBetween(STUDIES, ALL_DATED.from, ALL_DATED.to).filter((s) =>
      partsOf(s.studyUid, s.patient.id).some((p) => p.series.some((x) => x.modality === 'MR')),
    );
    expect(withMr.length).toBeGreaterThan(2);
    expect(rowKeysOf(rows)).toEqual(sorted(expectedKeys(withMr)));
  });

  it('finds the undated studies, and no dated one', async () => {
    const rows = await source().findUndatedStudies();
    expect(rowKeysOf(rows)).toEqual(sorted(expectedKeys(undatedStudies(STUDIES))));
    expect(rows.length).toBe(3);
  });

  it("study rows give the study's date, modalities and counts over all its series", async () => {
    const rows = [...(await source().findStudies(ALL_DATED)), ...(await source().findUndatedStudies())];
    for (const ds of rows) {
      const parts = partsOf(studyUidOf(ds)!, valueOf(readString(ds, Tag.PatientID)));
      const series = parts.flatMap((p) => p.series);
      expect(valueOf(readString(ds, Tag.StudyDate))).toBe(parts[0]!.studyDate);
      expect(texts(ds, Tag.ModalitiesInStudy).sort()).toEqual([...new Set(series.map((s) => s.modality))].sort());
      expect(number(ds, Tag.NumberOfStudyRelatedSeries)).toBe(series.length);
      expect(number(ds, Tag.NumberOfStudyRelatedInstances)).toBe(series.reduce((n, s) => n + s.instances.length, 0));
    }
  });

  it('looks studies up by UID and by UID list; an unknown UID finds nothing', async () => {
    const [a, b, c] = corpus;
    expect(rowKeysOf(await source().searchStudies({ StudyInstanceUID: a!.studyUid }))).toEqual(expectedKeys([a!]));
    const list = [a!, b!, c!].map((s) => s.studyUid).join(',');
    expect(rowKeysOf(await source().searchStudies({ StudyInstanceUID: list }))).toEqual(
      sorted(expectedKeys([a!, b!, c!])),
    );
    expect(rowKeysOf(await source().searchStudies({ StudyInstanceUID: TWO_PATIENTS_UID }))).toEqual(
      sorted(expectedKeys(twoPatients)),
    );
    expect(await source().searchStudies({ StudyInstanceUID: '2.25.1' })).toEqual([]);
    expect(await source().supportsUidListMatching()).toBe(true);
  });

  it('pages a search by limit and offset: disjoint pages that together are the whole answer', async () => {
    const wanted = corpus.slice(0, 5);
    const match = { StudyInstanceUID: wanted.map((s) => s.studyUid).join(',') };
    const pages = [];
    for (let offset = 0; offset < 6; offset += 2) pages.push(await source().searchStudies(match, { limit: 2, offset }));
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(rowKeysOf(pages.flat())).toEqual(sorted(expectedKeys(wanted)));
  });

  it('finds a series by SeriesInstanceUID, with the study that holds it', async () => {
    const series = full.series[0]!;
    const rows = await source().searchSeries({ SeriesInstanceUID: series.seriesUid });
    expect(rows.map((ds) => [studyUidOf(ds), valueOf(readString(ds, Tag.SeriesInstanceUID))])).toEqual([
      [full.studyUid, series.seriesUid],
    ]);
  });

  it('gives every series and instance of each study in one batched call; instances are optional', async () => {
    const uids = [...new Set(STUDIES.map((s) => s.studyUid))];
    const details = await source().studyDetails([...uids, '2.25.1']);
    for (const uid of uids) {
      const series = partsOf(uid).flatMap((p) => p.series);
      const d = details.get(uid)!;
      expect(d.series.map((ds) => valueOf(readString(ds, Tag.SeriesInstanceUID))).sort()).toEqual(
        series.map((s) => s.seriesUid).sort(),
      );
      expect(d.instances.map((ds) => valueOf(readString(ds, Tag.SOPInstanceUID))).sort()).toEqual(
        series.flatMap((s) => s.instances.map((i) => i.sopInstanceUid)).sort(),
      );
      expect(d.series.every((ds) => studyUidOf(ds) === uid)).toBe(true);
    }
    expect(details.get('2.25.1')).toEqual({ series: [], instances: [] });
    const seriesOnly = await source().studyDetails([corpus[0]!.studyUid], { instances: false });
    expect(seriesOnly.get(corpus[0]!.studyUid)!.instances).toEqual([]);
  });

  it('details of a Study UID under two patients carry both; a Patient ID narrows them to one', async () => {
    const patientsOf = (rows: DicomDataset[]) =>
      [...new Set(rows.map((ds) => valueOf(readString(ds, Tag.PatientID))))].sort();
    const both = (await source().studyDetails([TWO_PATIENTS_UID])).get(TWO_PATIENTS_UID)!;
    expect(patientsOf(both.series)).toEqual(['P-A', 'P-B']);
    const one = (await source().studyDetails([TWO_PATIENTS_UID], { patientId: 'P-B' })).get(TWO_PATIENTS_UID)!;
    expect(patientsOf(one.series)).toEqual(['P-B']);
    expect(one.instances).toHaveLength(3);
  });

  it('keeps one Study UID and Patient ID under two issuers as one study, each series with its own issuer', async () => {
    const rows = await source().searchStudies({ StudyInstanceUID: TWO_ISSUERS_UID });
    expect(rows).toHaveLength(1);
    expect(number(rows[0]!, Tag.NumberOfStudyRelatedSeries)).toBe(2);
    const d = (await source().studyDetails([TWO_ISSUERS_UID])).get(TWO_ISSUERS_UID)!;
    expect(d.series.map((ds) => valueOf(readString(ds, Tag.IssuerOfPatientID))).sort()).toEqual([
      'OTHERHOSP',
      'TWHOSP',
    ]);
  });

  it('gives WADO-RS metadata per instance, with the sequences QIDO rows leave out', async () => {
    const [row] = await source().searchStudies({ StudyInstanceUID: full.studyUid });
    expect(row![Tag.ProcedureCodeSequence]).toBeUndefined();
    const metadata = await source().studyMetadata(full.studyUid);
    expect(metadata.map((ds) => valueOf(readString(ds, Tag.SOPInstanceUID))).sort()).toEqual(
      full.series.flatMap((s) => s.instances.map((i) => i.sopInstanceUid)).sort(),
    );
    const procedure = metadata[0]![Tag.ProcedureCodeSequence]?.Value?.[0] as DicomDataset;
    expect(valueOf(readString(procedure, Tag.CodeValue))).toBe(full.procedureCode!.code);
    const enriched = (await source().studyDetails([full.studyUid], { metadata: true })).get(full.studyUid)!;
    expect(enriched.metadata?.[Tag.IssuerOfAccessionNumberSequence]).toBeDefined();
    await expect(source().studyMetadata('2.25.1')).rejects.toMatchObject({ name: 'PacsError', status: 404 });
  });
});

/**
 * Rows reduced to the attributes the mapper reads at their level (vr and values; ModalitiesInStudy as a set), as
 * canonical JSON (sequence items' keys sorted), in a stable order: what must be the same whichever source answered.
 */
function normalised(rows: readonly DicomDataset[], level: AttributeLevel): string[] {
  return rows
    .map((ds) => {
      const picked: Record<string, unknown> = {};
      for (const tag of attributesOf(level)) {
        const a = ds[tag];
        if (!a) continue;
        const values = tag === Tag.ModalitiesInStudy ? [...(a.Value ?? [])].map(String).sort() : a.Value;
        picked[describeTag(tag)] = { vr: a.vr, Value: values };
      }
      return canonicalJson(picked);
    })
    .sort();
}

/**
 * The study row of the two-issuer study without its IssuerOfPatientID: Orthanc reads that attribute (which it does
 * not index) from one of the study's files, and which one is not defined. Its series say each issuer (tested above).
 */
function withoutMergedIssuer(ds: DicomDataset): DicomDataset {
  if (studyUidOf(ds) !== TWO_ISSUERS_UID) return ds;
  const { [Tag.IssuerOfPatientID]: _issuer, ...rest } = ds;
  return rest;
}

const describeBoth = sources.length > 1 ? describe : describe.skip;

describeBoth('the in-memory double answers as Orthanc does (attributes the mapper reads)', () => {
  const both = async <T>(ask: (s: PacsSource) => Promise<T>): Promise<[T, T]> => [
    await ask(running.get('memory')!),
    await ask(running.get('orthanc')!),
  ];

  it('study rows of windows, the filtered window, the undated studies and UID lookups', async () => {
    const asks: ((s: PacsSource) => Promise<DicomDataset[]>)[] = [
      ...CORPUS_DAYS.map((day) => (s: PacsSource) => s.findStudies({ from: day, to: day })),
      (s) => s.findStudies(ALL_DATED),
      (s) => s.findStudies(ALL_DATED, { ModalitiesInStudy: 'CT' }),
      (s) => s.findUndatedStudies(),
      (s) => s.searchStudies({ StudyInstanceUID: [TWO_PATIENTS_UID, TWO_ISSUERS_UID, full.studyUid].join(',') }),
    ];
    for (const ask of asks) {
      const [memory, orthanc] = await both(ask);
      expect(normalised(memory.map(withoutMergedIssuer), 'study')).toEqual(
        normalised(orthanc.map(withoutMergedIssuer), 'study'),
      );
    }
  });

  it('series and instance rows of every study, and series found by UID', async () => {
    const uids = [...new Set(STUDIES.map((s) => s.studyUid))];
    const [memory, orthanc] = await both((s) => s.studyDetails(uids));
    for (const uid of uids) {
      expect(normalised(memory.get(uid)!.series, 'series')).toEqual(normalised(orthanc.get(uid)!.series, 'series'));
      expect(normalised(memory.get(uid)!.instances, 'instance')).toEqual(
        normalised(orthanc.get(uid)!.instances, 'instance'),
      );
    }
    const [a, b] = await both((s) => s.searchSeries({ SeriesInstanceUID: full.series[1]!.seriesUid }));
    expect(normalised(a, 'series')).toEqual(normalised(b, 'series'));
  });

  it('the study attributes WADO-RS metadata fills in for enrichment', async () => {
    // Any instance will do: the study-level attributes are the same in each of the study's files.
    const [memory, orthanc] = await both((s) => s.studyMetadata(full.studyUid));
    expect(normalised([memory[0]!], 'study')).toEqual(normalised([orthanc[0]!], 'study'));
  });
});
