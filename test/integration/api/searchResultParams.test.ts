/**
 * The search parameters clients pull with, against a real Orthanc (live) and the store the real sync fills:
 * _lastUpdated with every prefix (store; live refuses it), _sort on started and _lastUpdated with paging that
 * follows the sort, strict handling of unknown parameters (lenient on request), _elements, _pretty, the
 * CapabilityStatement per mode, and fhir-kit-client driving sorted, refused and lenient searches.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Bundle, CapabilityStatement, ImagingStudy, OperationOutcome } from 'fhir/r4';
import { SUBSETTED } from '../../../src/api/fhir/elements';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService } from '../../../src/sync';
import { loadStudies, makeStudy, type SyntheticStudy } from '../../fixtures/synthetic';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { apiSource, includes, matches, serveApi, sourceConfig, type ServedApi } from './helpers';

const run = promisify(execFile);
const PID = 'P-SORT-1';
const patient = { id: PID, alphabetic: 'Test^Sort' };

let orthanc: OrthancServer;
let tmp: string;
let store: SqliteStateStore;
let live: ServedApi;
let fromStore: ServedApi;

/**
 * Seven studies of one patient whose start instants order differently from their local days and wall clocks
 * (source zone Asia/Taipei, +08:00), in ascending order of `started`: s4, s1, s2, s3, s7, s5, then s6 (undated).
 */
const s1 = makeStudy({ patient, studyDate: '20240102', studyTime: '100000', tzOffset: undefined }); // 01-02T02:00Z
const s2 = makeStudy({ patient, studyDate: '20240102', studyTime: '080000', tzOffset: '-0500' }); // 01-02T13:00Z
const s3 = makeStudy({ patient, studyDate: '20240103', studyTime: undefined, tzOffset: undefined }); // 01-02T16:00Z
const s4 = makeStudy({ patient, studyDate: '20240101', studyTime: '235959', tzOffset: undefined }); // 01-01T15:59:59Z
const s5 = makeStudy({ patient, studyDate: '20240104', studyTime: '000000', tzOffset: undefined }); // 01-03T16:00Z
const s6 = makeStudy({ patient, studyDate: undefined, studyTime: undefined, tzOffset: undefined });
const s7 = makeStudy({ patient, studyDate: '20240103', studyTime: '120000', tzOffset: '+0800' }); // 01-03T04:00Z
const corpus = [s1, s2, s3, s4, s5, s6, s7];
const byStarted = [s4, s1, s2, s3, s7, s5].map((s) => s.studyUid);
const byStartedDesc = [...byStarted].reverse();
const uids = (...ss: SyntheticStudy[]) => ss.map((s) => s.studyUid);

/** The store's last-updated times, set after the sync: hour k of 2030-01-01 for the k-th of this list. */
const stampOrder = [s3, s6, s1, s5, s2, s7, s4];
const stamp = (k: number) => new Date(Date.UTC(2030, 0, 1, k));
const T3 = '2030-01-01T03:00:00Z'; // s5's

const enc = encodeURIComponent;
const byPatient = `patient:identifier=${PID}`;
const apiBase = { auth: { type: 'none' as const }, patientIdRule: { prefix: 'pid-' }, rateLimit: { enabled: false } };

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'api-result-params-'));
  orthanc = await startOrthanc();
  await loadStudies(orthanc, corpus);
  const cfg = sourceConfig('a', orthanc.dicomWebBase);
  live = await serveApi({ config: apiBase, sources: [apiSource(cfg)] });
  store = openSqliteStore(path.join(tmp, 'store.db'));
  const sync = createSyncService({
    config: { sources: [cfg], sync: { lookbackDays: 1 } },
    store,
    sinks: [createEmbeddedSink(store)],
  });
  expect((await sync.backfill('a', '20240101', '20240131')).status).toBe('ok');
  await sync.runOnce('a', { undated: true });
  await restamp();
  fromStore = await serveApi({
    config: { ...apiBase, mode: 'store', storeFallback: false },
    sources: [apiSource(cfg)],
    store: store.resources,
  });
});

afterAll(async () => {
  await Promise.all([live?.close(), fromStore?.close()]);
  store?.close();
  await orthanc?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** Writes each study again with its stamp as the store's write time. */
async function restamp(): Promise<void> {
  for (const [k, s] of stampOrder.entries()) {
    const stored = await store.resources.get<ImagingStudy & { id: string }>('ImagingStudy', s.studyUid);
    expect(stored).toBeDefined();
    await store.resources.put([
      { resource: stored!, sourceId: 'a', studyUid: s.studyUid, contentHash: `stamp-${k}`, at: stamp(k) },
    ]);
  }
}

/** Match ids in the order the Bundle gives them. */
const orderedIds = (b: Bundle) => matches(b).map((r) => r.id!);
const link = (b: Bundle, relation: string) => b.link?.find((l) => l.relation === relation)?.url;

async function search(api: ServedApi, query: string, headers: Record<string, string> = {}) {
  return api.http.get(`/ImagingStudy?${query}`, { headers });
}

async function ids(api: ServedApi, query: string): Promise<string[]> {
  const res = await search(api, query);
  if (res.status !== 200) throw new Error(`${query} → ${res.status}: ${JSON.stringify(res.data)}`);
  return orderedIds(res.data);
}

/** Follows next links, keeping the order; the pages too. */
async function pagesOf(api: ServedApi, query: string): Promise<Bundle[]> {
  const pages: Bundle[] = [];
  for (let url: string | undefined = `/ImagingStudy?${query}`; url; url = link(pages[pages.length - 1], 'next')) {
    const res = await api.http.get(url);
    expect([url, res.status]).toEqual([url, 200]);
    pages.push(res.data);
    if (pages.length > 20) throw new Error('paging does not end');
  }
  return pages;
}

function expectRefused(res: { status: number; data: OperationOutcome }, pattern: RegExp): void {
  expect(res.status).toBe(400);
  expect(res.data.resourceType).toBe('OperationOutcome');
  expect(res.data.issue[0].diagnostics).toMatch(pattern);
}

async function fhirKit(api: ServedApi, query: string, prefer?: string) {
  const script = path.join(__dirname, 'fhirKitSearch.mjs');
  const { stdout } = await run(process.execPath, [script, api.base, query, ...(prefer ? [prefer] : [])]);
  return JSON.parse(stdout) as { ids?: string[]; pages?: number; self?: string; status?: number; diagnostics?: string };
}

describe('_lastUpdated (store mode)', () => {
  const k = (...ss: SyntheticStudy[]) => uids(...ss).sort();
  const stampedFrom = (from: number, to = stampOrder.length) => k(...stampOrder.slice(from, to));

  it.each([
    ['gt2999-01-01', []],
    [`eq${T3}`, [3, 4]],
    [`ge${T3}`, [3, 7]],
    [`gt${T3}`, [4, 7]],
    [`sa${T3}`, [4, 7]],
    [`le${T3}`, [0, 4]],
    [`lt${T3}`, [0, 3]],
    [`eb${T3}`, [0, 3]],
    ['eq2030-01-01', [0, 7]],
    ['gt2030-01-01', []],
    ['lt2030-01-01T02:00', [0, 2]],
    ['eq2030-01-01T11:00:00+08:00', [3, 4]], // 03:00Z
    [`ap${T3}`, [0, 7]], // years from now: a tenth of that covers every stamp
    ['ap2020-01-01', []],
  ] as [string, [number, number] | []][])('_lastUpdated=%s', async (value, range) => {
    const expected = range.length ? stampedFrom(range[0], range[1]) : [];
    expect((await ids(fromStore, `_lastUpdated=${enc(value)}`)).sort()).toEqual(expected);
  });

  it('ne, ranges, and together with other parameters', async () => {
    expect((await ids(fromStore, `_lastUpdated=ne${enc(T3)}`)).sort()).toEqual(k(...corpus.filter((s) => s !== s5)));
    const range = `_lastUpdated=ge${enc(T3)}&_lastUpdated=lt2030-01-01T05:00Z`;
    expect((await ids(fromStore, range)).sort()).toEqual(k(s5, s2));
    expect((await ids(fromStore, `${byPatient}&_lastUpdated=le2030-01-01T01:00:00Z`)).sort()).toEqual(k(s3, s6));
    expect((await ids(fromStore, `started=ge2024-01-03&_lastUpdated=ge${enc(T3)}`)).sort()).toEqual(k(s5, s7));
    expect((await fromStore.http.get(`/ImagingStudy?_lastUpdated=ge${enc(T3)}&_summary=count`)).data.total).toBe(4);
  });

  it('live mode refuses it, saying why', async () => {
    expectRefused(
      await search(live, `${byPatient}&_lastUpdated=gt2024-01-01`),
      /live mode.*PACS keeps no last-updated/,
    );
    expectRefused(await search(live, `${byPatient}&_sort=_lastUpdated`), /live mode.*PACS keeps no last-updated/);
  });
});

describe('_sort', () => {
  it('started and -started order every study in both modes, undated last', async () => {
    for (const api of [live, fromStore]) {
      expect(await ids(api, `${byPatient}&_sort=started`)).toEqual([...byStarted, s6.studyUid]);
      expect(await ids(api, `${byPatient}&_sort=-started`)).toEqual([...byStartedDesc, s6.studyUid]);
    }
  });

  it('_lastUpdated and -_lastUpdated in store mode; several keys', async () => {
    expect(await ids(fromStore, `${byPatient}&_sort=_lastUpdated`)).toEqual(uids(...stampOrder));
    expect(await ids(fromStore, `${byPatient}&_sort=-_lastUpdated`)).toEqual(uids(...stampOrder).reverse());
    expect(await ids(fromStore, `${byPatient}&_sort=-started,_lastUpdated`)).toEqual([...byStartedDesc, s6.studyUid]);
  });

  it('pages follow the sort in both modes: every study once, previous links go back, the self link keeps _sort', async () => {
    for (const api of [live, fromStore]) {
      const pages = await pagesOf(api, `${byPatient}&_sort=-started&_count=3`);
      expect(pages.map(orderedIds)).toEqual([byStartedDesc.slice(0, 3), byStartedDesc.slice(3, 6), [s6.studyUid]]);
      expect(pages.map((p) => p.total)).toEqual([7, 7, 7]);
      expect(link(pages[0], 'previous')).toBeUndefined();
      for (let i = 1; i < pages.length; i++)
        expect(orderedIds((await api.http.get(link(pages[i], 'previous')!)).data)).toEqual(orderedIds(pages[i - 1]));
      expect(link(pages[1], 'self')).toMatch(/_sort=-started/);
      expect(orderedIds((await api.http.get(link(pages[1], 'self')!)).data)).toEqual(orderedIds(pages[1]));
    }
  });

  it('a study written between two pages before the position shows no study twice (store, keyset paging)', async () => {
    const q = `_lastUpdated=ge2029-01-01&_sort=_lastUpdated&_count=3`;
    const first = (await search(fromStore, q)).data as Bundle;
    expect(orderedIds(first)).toEqual(uids(...stampOrder.slice(0, 3)));
    const stored = await store.resources.get<ImagingStudy & { id: string }>('ImagingStudy', s1.studyUid);
    const uid = '2.25.55501';
    const early = { ...stored!, id: uid, identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${uid}` }] };
    await store.resources.put([
      { resource: early, sourceId: 'a', studyUid: uid, contentHash: 'early', at: new Date('2029-06-01T00:00:00Z') },
    ]);
    try {
      const rest: string[] = [];
      for (let url = link(first, 'next'); url;) {
        const page = (await fromStore.http.get(url)).data as Bundle;
        rest.push(...orderedIds(page));
        url = link(page, 'next');
      }
      expect(rest).toEqual(uids(...stampOrder.slice(3)));
    } finally {
      await store.resources.delete('ImagingStudy', uid);
    }
  });

  it('an unknown sort key is refused in both modes', async () => {
    for (const api of [live, fromStore]) {
      expectRefused(await search(api, `${byPatient}&_sort=colour`), /colour/);
      expectRefused(await search(api, `${byPatient}&_sort=-started,-started`), /twice/);
    }
  });

  it('through fhir-kit-client: sorted pages in order, and the 400s', async () => {
    const liveRun = await fhirKit(live, `${byPatient}&_sort=-started&_count=2`);
    expect(liveRun).toMatchObject({ ids: [...byStartedDesc, s6.studyUid], pages: 4 });
    const storeRun = await fhirKit(fromStore, `_lastUpdated=gt2029-12-31&_sort=-_lastUpdated&_count=3`);
    expect(storeRun).toMatchObject({ ids: uids(...stampOrder).reverse(), pages: 3 });
    expect(await fhirKit(live, `${byPatient}&_lastUpdated=gt2024-01-01`)).toMatchObject({
      status: 400,
      diagnostics: expect.stringMatching(/PACS keeps no last-updated/),
    });
    expect(await fhirKit(fromStore, `${byPatient}&_sort=colour`)).toMatchObject({ status: 400 });
  });
});

describe('strict handling by default; lenient on request', () => {
  it('an unknown or misspelt parameter is refused with an OperationOutcome naming it', async () => {
    for (const api of [live, fromStore]) {
      expectRefused(await search(api, 'started=ge2000-01-01&foo=bar'), /"foo"/);
      expectRefused(await search(api, `patinet=Patient/pid-${PID}&started=ge2000-01-01`), /"patinet"/);
      expectRefused(await search(api, `${byPatient}&_revinclude=x`), /"_revinclude"/);
    }
  });

  it('Prefer: handling=lenient ignores them, and the self link shows only what was applied', async () => {
    const dated = uids(...corpus.filter((s) => s.studyDate)).sort();
    for (const api of [live, fromStore]) {
      const res = await search(api, 'started=ge2000-01-01&foo=bar&_count=10', { Prefer: 'handling=lenient' });
      expect(res.status).toBe(200);
      expect(orderedIds(res.data).sort()).toEqual(dated);
      const self = link(res.data, 'self')!;
      expect(self).toContain('started=ge2000-01-01');
      expect(self).not.toMatch(/foo/);
    }
    const kit = await fhirKit(live, `${byPatient}&foo=bar&_sort=started`, 'handling=lenient');
    expect(kit.ids).toEqual([...byStarted, s6.studyUid]);
    expect(kit.self).toMatch(/_sort=started/);
    expect(kit.self).not.toMatch(/foo/);
    expect(await fhirKit(live, `${byPatient}&foo=bar`)).toMatchObject({ status: 400 });
  });

  it('the result parameters clients send keep working: _format, _pretty, _summary, _count', async () => {
    for (const api of [live, fromStore]) {
      expect((await search(api, `${byPatient}&_format=json`)).status).toBe(200);
      expect((await search(api, `${byPatient}&_summary=count`)).data.total).toBe(7);
      expect(orderedIds((await search(api, `${byPatient}&_count=2`)).data)).toHaveLength(2);
      const pretty = await api.http.get(`/ImagingStudy?${byPatient}&_pretty=true`, { transformResponse: (x) => x });
      expect(pretty.status).toBe(200);
      expect(pretty.data).toMatch(/^\{\n {2}"resourceType": "Bundle"/);
      expect(JSON.parse(pretty.data).link[0].url).not.toMatch(/_pretty/);
      const plain = await api.http.get(`/ImagingStudy?${byPatient}`, { transformResponse: (x) => x });
      expect(plain.data).not.toContain('\n');
    }
  });
});

describe('_elements', () => {
  it('matches keep the listed and mandatory elements and are tagged SUBSETTED; included Endpoints stay whole', async () => {
    for (const api of [live, fromStore]) {
      const res = await search(api, `${byPatient}&_elements=identifier,started&_include=ImagingStudy:endpoint`);
      expect(res.status).toBe(200);
      const found = matches(res.data);
      expect(found).toHaveLength(7);
      for (const r of found) {
        expect(
          Object.keys(r).every((key) =>
            ['resourceType', 'id', 'meta', 'status', 'subject', 'identifier', 'started'].includes(key),
          ),
        ).toBe(true);
        expect(r.identifier?.length).toBeGreaterThan(0);
        expect(r.status).toBeDefined();
        expect(r.subject).toBeDefined();
        expect(r.series).toBeUndefined();
        expect(r.meta?.tag).toContainEqual(SUBSETTED);
      }
      const [endpoint] = includes(res.data);
      expect(endpoint).toMatchObject({ resourceType: 'Endpoint', address: orthanc.dicomWebBase });
      expect(endpoint.meta?.tag ?? []).not.toContainEqual(SUBSETTED);
      expect(link(res.data, 'self')).toContain(`_elements=${enc('identifier,started')}`);
      expectRefused(await search(api, `${byPatient}&_elements=colour`), /colour/);
    }
  });
});

describe('the CapabilityStatement claims what each mode does', () => {
  const params = async (api: ServedApi) => {
    const cs = (await api.http.get('/metadata')).data as CapabilityStatement;
    return new Map(cs.rest![0].resource![0].searchParam!.map((p) => [p.name, p.documentation ?? '']));
  };

  it('store mode: _lastUpdated and _sort with its _lastUpdated keys; live mode: _sort on started only', async () => {
    const s = await params(fromStore);
    expect(s.get('_lastUpdated')).toMatch(/Store mode only/);
    expect(s.get('_sort')).toMatch(/_lastUpdated, -_lastUpdated \(store mode only\)/);
    for (const name of ['_elements', '_pretty', '_format', '_summary', '_count']) expect(s.has(name)).toBe(true);
    const l = await params(live);
    expect(l.has('_lastUpdated')).toBe(false);
    expect(l.get('_sort')).toMatch(/started, -started \(both modes\)/);
  });
});
