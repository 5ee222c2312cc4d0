/**
 * The FHIR API answering live from a real Orthanc: for every fixture study, each search parameter
 * finds it and only what it should; paging (one source and two), _include, _summary=count; a page
 * costs one study query and one batched series query; and the store mode, filled by the real sync,
 * returns the same resources as live.
 */
import type { Bundle, Endpoint, ImagingStudy } from 'fhir/r4';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService } from '../../../src/sync';
import {
  generateCorpus,
  loadStudies,
  makeSeries,
  makeStudy,
  modalitiesInStudy,
  type SyntheticStudy,
} from '../../fixtures/synthetic';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import {
  ACCESSION_SYSTEM,
  allPages,
  apiSource,
  includes,
  matches,
  matchIds,
  pacsRequests,
  serveApi,
  sourceConfig,
  STUDY_ID_SYSTEM,
  uidsOf,
  type ServedApi,
} from './helpers';

const HOSP_A_SYSTEM = 'urn:oid:2.16.886.111.100.1';
const DEFAULT_PATIENT_SYSTEM = 'urn:pacs-fhir-bridge:a:patient-id'; // source a's own (no defaultSystem set)
const enc = encodeURIComponent;

let orthanc: OrthancServer;
let orthanc2: OrthancServer;
let corpus: SyntheticStudy[];
let corpus2: SyntheticStudy[];
let live: ServedApi;
let tmp: string;
const mappingOver = {
  mapping: {
    accessionSystem: ACCESSION_SYSTEM,
    studyIdSystem: STUDY_ID_SYSTEM,
    patient: { issuerSystems: { 'TW-HOSP-A': HOSP_A_SYSTEM } },
  },
};
const cfgA = () => sourceConfig('a', orthanc.dicomWebBase, mappingOver);
const apiBase = {
  auth: { type: 'none' as const },
  patientIdRule: { prefix: 'pid-' },
  maxCount: 50,
  rateLimit: { enabled: false },
};

const isoDay = (da: string) => `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}`;
const patientSystem = (s: SyntheticStudy) =>
  s.patient.issuer === 'TW-HOSP-A' ? HOSP_A_SYSTEM : DEFAULT_PATIENT_SYSTEM;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'api-search-'));
  [orthanc, orthanc2] = await Promise.all([startOrthanc(), startOrthanc()]);
  corpus = [
    ...generateCorpus({ seed: 61, studies: 14, days: { from: '20240101', count: 4 }, undated: 1 }),
    // Two accession numbers and two patient ids that differ only in case: Orthanc matches both, FHIR one.
    makeStudy({
      accession: 'AbC-1',
      patient: { id: 'Pcase', issuer: 'TW-HOSP-A', alphabetic: 'Lin^Mei' },
      studyDate: '20240102',
      studyTime: '081500',
    }),
    makeStudy({
      accession: 'abc-1',
      patient: { id: 'PCASE', alphabetic: 'Lin^Mei' },
      studyDate: '20240102',
      studyTime: '1015',
      tzOffset: undefined,
    }),
    makeStudy({
      studyDate: '20240103',
      studyTime: '235959.5',
      series: [makeSeries({ modality: 'MR', instances: 3 }), makeSeries({ modality: 'SR', number: 2, instances: 1 })],
    }),
  ];
  corpus2 = generateCorpus({ seed: 62, studies: 5, days: { from: '20240101', count: 2 }, undated: 0 });
  await Promise.all([loadStudies(orthanc, corpus), loadStudies(orthanc2, corpus2)]);
  live = await serveApi({ config: { ...apiBase, cache: { enabled: true } }, sources: [apiSource(cfgA())] });
});

afterAll(async () => {
  await live?.close();
  await Promise.all([orthanc?.stop(), orthanc2?.stop()]);
  rmSync(tmp, { recursive: true, force: true });
});

async function ids(query: string, api: ServedApi = live): Promise<string[]> {
  const res = await api.http.get(`/ImagingStudy?${query}`);
  if (res.status !== 200) throw new Error(`${query} → ${res.status}: ${JSON.stringify(res.data)}`);
  return matchIds(res.data);
}

describe('each search parameter finds each fixture study, and only what it should', () => {
  it('_id and identifier (Study Instance UID)', async () => {
    for (const s of corpus) {
      expect(await ids(`_id=${s.studyUid}`)).toEqual([s.studyUid]);
      expect(await ids(`identifier=${enc(`urn:dicom:uid|urn:oid:${s.studyUid}`)}`)).toEqual([s.studyUid]);
      expect(await ids(`identifier=${enc(`urn:oid:${s.studyUid}`)}`)).toEqual([s.studyUid]);
    }
    const [a, b] = corpus;
    expect(await ids(`_id=${a.studyUid},${b.studyUid}`)).toEqual(uidsOf([a, b]));
    expect(await ids(`_id=${a.studyUid}.9`)).toEqual([]);
  });

  it('identifier (accession number with and without system; Study ID by its system)', async () => {
    let checked = 0;
    for (const s of corpus.filter((x) => x.accession)) {
      const same = uidsOf(corpus.filter((x) => x.accession === s.accession));
      expect(await ids(`identifier=${enc(s.accession!)}`)).toEqual(same);
      expect(await ids(`identifier=${enc(`${ACCESSION_SYSTEM}|${s.accession}`)}`)).toEqual(same);
      expect(await ids(`identifier=${enc(`urn:other|${s.accession}`)}`)).toEqual([]);
      expect(await ids(`identifier=${enc(`|${s.accession}`)}`)).toEqual([]);
      checked++;
    }
    expect(checked).toBeGreaterThan(10);
    for (const s of corpus.filter((x) => x.studyId)) {
      expect(await ids(`identifier=${enc(`${STUDY_ID_SYSTEM}|${s.studyId}`)}`)).toEqual(
        uidsOf(corpus.filter((x) => x.studyId === s.studyId)),
      );
    }
  });

  it('identifier matches case-sensitively although Orthanc does not', async () => {
    const [upper, lower] = corpus.slice(-3);
    expect(await ids('identifier=AbC-1')).toEqual([upper.studyUid]);
    expect(await ids('identifier=abc-1')).toEqual([lower.studyUid]);
    expect(await ids('identifier=ABC-1')).toEqual([]);
  });

  it('patient / subject: Patient/<id>, :identifier and .identifier, with the issuer system', async () => {
    for (const s of corpus) {
      const pid = s.patient.id;
      const same = uidsOf(corpus.filter((x) => x.patient.id === pid));
      const sameSystem = uidsOf(corpus.filter((x) => x.patient.id === pid && patientSystem(x) === patientSystem(s)));
      // The Patient id rule names no system: a Patient id is that Patient ID without an issuer, never every issuer's.
      const issuerless = uidsOf(
        corpus.filter((x) => x.patient.id === pid && patientSystem(x) === DEFAULT_PATIENT_SYSTEM),
      );
      expect(await ids(`patient=Patient/pid-${enc(pid)}`)).toEqual(issuerless);
      expect(await ids(`subject=pid-${enc(pid)}`)).toEqual(issuerless);
      expect(await ids(`patient:identifier=${enc(pid)}`)).toEqual(same);
      expect(await ids(`patient.identifier=${enc(`${patientSystem(s)}|${pid}`)}`)).toEqual(sameSystem);
      expect(await ids(`subject:identifier=${enc(`${patientSystem(s)}|${pid}`)}`)).toEqual(sameSystem);
      expect(await ids(`patient.identifier=${enc(`urn:other|${pid}`)}`)).toEqual([]);
    }
    expect(await ids('patient:identifier=Pcase')).toEqual([corpus[corpus.length - 3].studyUid]);
  });

  it('started: a day with every prefix, ranges, and instants', async () => {
    const dated = corpus.filter((s) => s.studyDate);
    for (const day of [...new Set(dated.map((s) => s.studyDate!))]) {
      const d = isoDay(day);
      const same = uidsOf(dated.filter((s) => s.studyDate === day));
      expect(await ids(`started=${d}`)).toEqual(same);
      expect(await ids(`started=ge${d}&started=le${d}`)).toEqual(same);
      expect(await ids(`started=eq${d}`)).toEqual(same);
      expect(await ids(`started=ge${d}&_count=50`)).toEqual(uidsOf(dated.filter((s) => s.studyDate! >= day)));
      expect(await ids(`started=gt${d}`)).toEqual(uidsOf(dated.filter((s) => s.studyDate! > day)));
      expect(await ids(`started=lt${d}`)).toEqual(uidsOf(dated.filter((s) => s.studyDate! < day)));
      expect(await ids(`started=le${d}`)).toEqual(uidsOf(dated.filter((s) => s.studyDate! <= day)));
    }
    expect(await ids('started=2024-01')).toEqual(uidsOf(dated));
    // Instants: studies in the source's zone (+08:00, or no offset), to the second.
    const timed = dated.filter((s) => s.studyTime && (!s.tzOffset || s.tzOffset === '+0800'));
    expect(timed.length).toBeGreaterThan(3);
    for (const s of timed) {
      const t = s.studyTime!.padEnd(6, '0');
      const at = `${isoDay(s.studyDate!)}T${t.slice(0, 2)}:${t.slice(2, 4)}:${t.slice(4, 6)}`;
      const found = await ids(`started=ge${enc(`${at}+08:00`)}&started=le${enc(`${at}+08:00`)}`);
      expect(found).toEqual([s.studyUid]);
      expect(await ids(`started=gt${enc(`${at}+08:00`)}&started=le${isoDay(s.studyDate!)}`)).not.toContain(s.studyUid);
    }
  });

  it('modality and status, with a restricting parameter', async () => {
    for (const s of corpus.filter((x) => x.studyDate)) {
      const day = corpus.filter((x) => x.studyDate === s.studyDate);
      for (const m of modalitiesInStudy(s)) {
        expect(await ids(`started=${isoDay(s.studyDate!)}&modality=${m}`)).toEqual(
          uidsOf(day.filter((x) => modalitiesInStudy(x).includes(m))),
        );
        expect(
          await ids(
            `started=${isoDay(s.studyDate!)}&modality=${enc(`http://dicom.nema.org/resources/ontology/DCM|${m}`)}`,
          ),
        ).toContain(s.studyUid);
      }
      expect(await ids(`_id=${s.studyUid}&status=available`)).toEqual([s.studyUid]);
      expect(await ids(`_id=${s.studyUid}&status=registered,cancelled`)).toEqual([]);
    }
  });

  it('series: finds the study holding the series, combined with a restricting parameter', async () => {
    for (const s of corpus) {
      const other = corpus.find((x) => x !== s)!;
      for (const series of s.series) {
        expect(await ids(`_id=${s.studyUid}&series=${series.seriesUid}`)).toEqual([s.studyUid]);
        expect(await ids(`_id=${s.studyUid}&series=${other.series[0].seriesUid}`)).toEqual([]);
      }
    }
  });

  it('series alone finds exactly the study holding it, at a bounded cost', async () => {
    const src = apiSource(cfgA());
    await src.pacs.supportsUidListMatching(); // the one-time probe, outside the measurement
    const api = await serveApi({ config: { ...apiBase, cache: { enabled: false } }, sources: [src] });
    const cost = async (query: string) => {
      const before = { ...src.pacs.stats.requests };
      const found = await ids(query, api);
      const after = src.pacs.stats.requests;
      return {
        found,
        studies: after.studies - before.studies,
        series: after.series - before.series,
        instances: after.instances - before.instances,
      };
    };
    try {
      for (const s of corpus) {
        for (const series of s.series) {
          // One series-level query (series → study), one study-level query, one batched detail query.
          expect(await cost(`series=${series.seriesUid}`)).toEqual({
            found: [s.studyUid],
            studies: 1,
            series: 2,
            instances: 0,
          });
        }
      }
      const [a, b] = corpus;
      expect(await cost(`series=${a.series[0].seriesUid},${b.series[0].seriesUid}`)).toEqual({
        found: uidsOf([a, b]),
        studies: 1,
        series: 2,
        instances: 0,
      });
      // A series no study holds: the series query alone, nothing found.
      expect(await cost(`series=${a.series[0].seriesUid}.999`)).toEqual({
        found: [],
        studies: 0,
        series: 1,
        instances: 0,
      });
      // Repeated (AND): only a study holding both series matches.
      const two = corpus.find((s) => s.series.length > 1)!;
      expect(await ids(`series=${two.series[0].seriesUid}&series=${two.series[1].seriesUid}`, api)).toEqual([
        two.studyUid,
      ]);
      const elsewhere = corpus.find((s) => s !== two)!;
      expect(await ids(`series=${two.series[0].seriesUid}&series=${elsewhere.series[0].seriesUid}`, api)).toEqual([]);
      // With other parameters, and counted.
      expect(await ids(`series=${two.series[0].seriesUid}&modality=${two.series[1].modality}`, api)).toEqual([
        two.studyUid,
      ]);
      expect(
        (await api.http.get(`/ImagingStudy?series=${a.series[0].seriesUid},${b.series[0].seriesUid}&_summary=count`))
          .data.total,
      ).toBe(2);
      // A malformed series UID: 400 before any PACS request.
      const before = pacsRequests(src.pacs);
      for (const bad of ['1.2.x', '1.2.*', '', `${a.series[0].seriesUid}%0A`]) {
        const res = await api.http.get(`/ImagingStudy?series=${bad}`);
        expect([bad, res.status, res.data.resourceType]).toEqual([bad, 400, 'OperationOutcome']);
      }
      expect(pacsRequests(src.pacs)).toBe(before);
    } finally {
      await api.close();
    }
  });

  it('series lists on a PACS without UID-list matching: one series query per UID', async () => {
    const src = apiSource(sourceConfig('a', orthanc.dicomWebBase, { ...mappingOver, uidListMatching: 'off' }));
    const api = await serveApi({ config: { ...apiBase, cache: { enabled: false } }, sources: [src] });
    try {
      const two = corpus.find((s) => s.series.length > 1)!;
      const before = { ...src.pacs.stats.requests };
      expect(await ids(`series=${two.series[0].seriesUid},${two.series[1].seriesUid}`, api)).toEqual([two.studyUid]);
      expect(src.pacs.stats.requests.series - before.series).toBe(2 + 1);
      expect(src.pacs.stats.requests.studies - before.studies).toBe(1);
      // Series of two studies would need a Study Instance UID list: refused as for _id.
      const other = corpus.find((s) => s !== two)!;
      const res = await api.http.get(`/ImagingStudy?series=${two.series[0].seriesUid},${other.series[0].seriesUid}`);
      expect(res.status).toBe(400);
      expect(res.data.issue[0].code).toBe('not-supported');
    } finally {
      await api.close();
    }
  });

  it('a study looks the same in a search and in a read (instance lists aside)', async () => {
    for (const s of corpus) {
      const read = (await live.http.get(`/ImagingStudy/${s.studyUid}`)).data as ImagingStudy;
      const [found] = matches((await live.http.get(`/ImagingStudy?_id=${s.studyUid}`)).data);
      expect(read.series!.every((x) => x.instance?.length)).toBe(true);
      const withoutInstances = { ...read, series: read.series!.map(({ instance: _i, ...x }) => x) };
      expect(found).toEqual(withoutInstances);
      expect(read.numberOfInstances).toBe(s.series.reduce((n, x) => n + x.instances.length, 0));
    }
  });
});

describe('paging, _include and _summary', () => {
  it('follows next links through every match, and previous links go back', async () => {
    const dated = corpus.filter((s) => s.studyDate);
    const { ids: all, pages } = await allPages(live.http, '/ImagingStudy?started=ge2024-01-01&_count=4');
    expect(all.sort()).toEqual(uidsOf(dated));
    expect(pages.length).toBe(Math.ceil(dated.length / 4));
    for (const p of pages) expect(matchIds(p).length).toBeLessThanOrEqual(4);
    const self = pages[1].link!.find((l) => l.relation === 'self')!.url;
    expect(self).toMatch(/started=ge2024-01-01/);
    expect(self).toMatch(/_count=4/);
    const prev = pages[1].link!.find((l) => l.relation === 'previous')!.url;
    expect(matchIds((await live.http.get(prev)).data)).toEqual(matchIds(pages[0]));
    expect(pages[0].link!.find((l) => l.relation === 'previous')).toBeUndefined();
  });

  it('pages across two sources in order, with previous links across the boundary', async () => {
    const two = await serveApi({
      config: apiBase,
      sources: [apiSource(cfgA()), apiSource(sourceConfig('b', orthanc2.dicomWebBase))],
    });
    try {
      const expected = uidsOf([...corpus.filter((s) => s.studyDate), ...corpus2]);
      const { ids: all, pages } = await allPages(two.http, '/ImagingStudy?started=ge2024-01-01&_count=5');
      expect(all.sort()).toEqual(expected);
      expect(new Set(all).size).toBe(all.length);
      // Every previous link lands on the page before it.
      for (let i = 1; i < pages.length; i++) {
        const prev = pages[i].link!.find((l) => l.relation === 'previous')!.url;
        expect(matchIds((await two.http.get(prev)).data)).toEqual(matchIds(pages[i - 1]));
      }
      // Both Endpoints are served; included ones belong to the page's sources.
      const eps = (await two.http.get('/Endpoint')).data as Bundle;
      expect(matchIds(eps)).toEqual(['pacs-a', 'pacs-b']);
      const last = pages[pages.length - 1];
      const withInclude = await two.http.get(
        last.link!.find((l) => l.relation === 'self')!.url + '&_include=ImagingStudy:endpoint',
      );
      expect(includes(withInclude.data).map((e) => e.id)).toEqual(['pacs-b']);
    } finally {
      await two.close();
    }
  });

  it('_include=ImagingStudy:endpoint adds the source Endpoint, which Endpoint read also returns', async () => {
    const res = await live.http.get(`/ImagingStudy?_id=${corpus[0].studyUid}&_include=ImagingStudy:endpoint`);
    const [ep] = includes(res.data) as Endpoint[];
    expect(ep).toMatchObject({
      resourceType: 'Endpoint',
      id: 'pacs-a',
      address: orthanc.dicomWebBase,
      connectionType: { code: 'dicom-wado-rs' },
    });
    expect(matches(res.data)[0].endpoint).toEqual([{ reference: 'Endpoint/pacs-a' }]);
    expect((await live.http.get('/Endpoint/pacs-a')).data).toEqual(ep);
    expect((await live.http.get('/Endpoint/pacs-zz')).status).toBe(404);
  });

  it('_summary=count gives the total only', async () => {
    const res = await live.http.get('/ImagingStudy?started=ge2024-01-01&_summary=count');
    expect(res.data.total).toBe(corpus.filter((s) => s.studyDate).length);
    expect(res.data.entry).toBeUndefined();
    const acc = corpus.find((s) => s.accession)!;
    expect((await live.http.get(`/ImagingStudy?identifier=${enc(acc.accession!)}&_summary=count`)).data.total).toBe(
      corpus.filter((s) => s.accession === acc.accession).length,
    );
  });

  it('a page costs one study-level query and one batched series query', async () => {
    const src = apiSource(cfgA());
    await src.pacs.supportsUidListMatching(); // the one-time probe, outside the measurement
    const api = await serveApi({ config: { ...apiBase, cache: { enabled: false } }, sources: [src] });
    try {
      const before = { ...src.pacs.stats.requests };
      const res = await api.http.get('/ImagingStudy?started=ge2024-01-01&_count=12');
      expect(matchIds(res.data)).toHaveLength(12);
      const after = src.pacs.stats.requests;
      expect(after.studies - before.studies).toBe(1);
      expect(after.series - before.series).toBe(1);
      expect(after.instances - before.instances).toBe(0);
      expect(pacsRequests(src.pacs) - Object.values(before).reduce((a, b) => a + b, 0)).toBe(2);
    } finally {
      await api.close();
    }
  });
});

describe('store mode (filled by the sync) answers with the same resources as live', () => {
  let store: SqliteStateStore;
  let fromStore: ServedApi;

  beforeAll(async () => {
    store = openSqliteStore(path.join(tmp, 'store.db'));
    const sync = createSyncService({
      config: { sources: [cfgA()], sync: { lookbackDays: 1 } },
      store,
      sinks: [createEmbeddedSink(store)],
    });
    const run = await sync.backfill('a', '20240101', '20240131');
    expect(run.status).toBe('ok');
    await sync.runOnce('a', { undated: true }); // the undated studies (a sweep's part; asked of a poll here)
    expect(await store.resources.listImagingStudies({ sourceId: 'a' })).toHaveLength(corpus.length);
    fromStore = await serveApi({
      config: { ...apiBase, mode: 'store', storeFallback: false },
      sources: [apiSource(cfgA())],
      store: store.resources,
    });
  });

  afterAll(async () => {
    await fromStore?.close();
    store?.close();
  });

  it('reads are identical for every study', async () => {
    for (const s of corpus) {
      const a = await live.http.get(`/ImagingStudy/${s.studyUid}`);
      const b = await fromStore.http.get(`/ImagingStudy/${s.studyUid}`);
      expect(b.status).toBe(200);
      // The store adds its version (ETag, meta.versionId); the rest is the same.
      const { versionId, ...meta } = b.data.meta;
      expect(versionId).toBeDefined();
      expect({ ...b.data, meta }).toEqual(a.data);
    }
  });

  it('searches find the same studies with the same resources', async () => {
    const queries = [
      'started=ge2024-01-01&_count=50',
      'started=2024-01-02&modality=CT',
      ...corpus.slice(0, 6).map((s) => `patient:identifier=${enc(s.patient.id)}`),
      ...corpus
        .filter((s) => s.accession)
        .slice(0, 6)
        .map((s) => `identifier=${enc(`${ACCESSION_SYSTEM}|${s.accession}`)}`),
      `_id=${corpus[2].studyUid}&series=${corpus[2].series[0].seriesUid}`,
      'identifier=abc-1',
    ];
    for (const q of queries) {
      const a = matches((await live.http.get(`/ImagingStudy?${q}`)).data).sort((x, y) => x.id!.localeCompare(y.id!));
      const b = matches((await fromStore.http.get(`/ImagingStudy?${q}`)).data).sort((x, y) =>
        x.id!.localeCompare(y.id!),
      );
      expect(b.length).toBeGreaterThan(0);
      expect(b).toEqual(a);
    }
    expect((await fromStore.http.get('/ImagingStudy?started=ge2024-01-01&_summary=count')).data.total).toBe(
      corpus.filter((s) => s.studyDate).length,
    );
  });

  it('a repeated store-mode search sees what the sync wrote in between (store answers are not kept)', async () => {
    const q = '/ImagingStudy?identifier=COPY-1';
    expect(matchIds((await fromStore.http.get(q)).data)).toEqual([]);
    const uid = '2.25.987654321012345';
    const copy = {
      ...(await store.resources.listImagingStudies({ sourceId: 'a' }))[0],
      id: uid,
      identifier: [
        { system: 'urn:dicom:uid', value: `urn:oid:${uid}` },
        { system: ACCESSION_SYSTEM, value: 'COPY-1' },
      ],
    };
    await store.resources.put([{ resource: copy, sourceId: 'a', studyUid: uid, contentHash: 'copy' }]);
    try {
      expect(matchIds((await fromStore.http.get(q)).data)).toEqual([uid]);
    } finally {
      await store.resources.delete('ImagingStudy', uid);
    }
  });

  it('a study not synced yet: 404 from the store alone, found through the live fallback', async () => {
    const late = makeStudy({ accession: 'LATE-1' });
    await loadStudies(orthanc, [late]);
    expect((await fromStore.http.get(`/ImagingStudy/${late.studyUid}`)).status).toBe(404);
    const withFallback = await serveApi({
      config: { ...apiBase, mode: 'store', storeFallback: true },
      sources: [apiSource(cfgA())],
      store: store.resources,
    });
    try {
      const res = await withFallback.http.get(`/ImagingStudy/${late.studyUid}`);
      expect(res.status).toBe(200);
      expect(res.data.id).toBe(late.studyUid);
      expect(matchIds((await withFallback.http.get(`/ImagingStudy?_id=${late.studyUid}`)).data)).toEqual([
        late.studyUid,
      ]);
    } finally {
      await withFallback.close();
    }
  });
});
