/**
 * One study in two sources: a PACS and its VNA (two real Orthancs) hold the same studies under one patient
 * identity (a shared defaultSystem). Each study is one ImagingStudy, in the embedded store and on a real FHIR
 * engine: both Endpoints, the union of the series (a series only one holds names its Endpoint), the PACS's
 * study-level attributes (it is configured first) whichever syncs last. The API answers each study once. A study
 * deleted from one source stays with the other's Endpoint; deleted from both, it is removed. Without a shared
 * patient identity the second source's copy is a Study UID conflict, quarantined.
 */
import type { Bundle, Endpoint, ImagingStudy } from 'fhir/r4';
import { sourceSchema, type SourceConfig } from '../../../src/config';
import { createPacsSource } from '../../../src/dicomweb';
import { imagingStudyId, isBlocking, validateImagingStudy } from '../../../src/mapping';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { createFhirSink } from '../../../src/sinks/fhir';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService, type SyncService } from '../../../src/sync';
import { loadStudies, makeSeries, makeStudy, type SyntheticStudy } from '../../fixtures/synthetic';
import { startFhirServer, type FhirTestServer } from '../../harness/fhirServer';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { includes, matchIds, serveApi } from '../api/helpers';
import { daysAgo, deleteFromOrthanc, TZ } from './common';

const SHARED = 'urn:oid:2.16.886.101.20003.20014.1';
const patient = { id: 'MRN-77', alphabetic: 'Lin^Mei', birthDate: '19800101', sex: 'F' as const };
const study = (n: number, over: Partial<SyntheticStudy> = {}) =>
  makeStudy({ studyUid: `2.25.2140${n}`, studyDate: daysAgo(1), patient, accession: `ACC-${n}`, ...over });

const shared = [1, 2, 3].map((n) => study(n));
// Study 4: the PACS holds two series, the VNA only the first, under its own description.
const ct = makeSeries({ modality: 'CT', number: 1, instances: 2 });
const localizer = makeSeries({ modality: 'CT', number: 2, instances: 1 });
const partialOnPacs = study(4, { series: [ct, localizer], description: 'PACS description' });
const partialOnVna = study(4, { series: [ct], description: 'VNA copy' });
const onlyOnPacs = study(5);

let pacs: OrthancServer;
let vna: OrthancServer;
let fhir: FhirTestServer;
let store: SqliteStateStore;

beforeAll(async () => {
  [pacs, vna, fhir] = await Promise.all([startOrthanc(), startOrthanc(), startFhirServer()]);
  await Promise.all([
    loadStudies(pacs, [...shared, partialOnPacs, onlyOnPacs]),
    loadStudies(vna, [...shared, partialOnVna]),
  ]);
}, 120000);
afterAll(async () => {
  store?.close();
  await fhir?.stop();
  await Promise.all([pacs?.stop(), vna?.stop()]);
});

/** `null`: no defaultSystem, each source its own patient identity. */
function sources(defaultSystem: string | null = SHARED): SourceConfig[] {
  const mapping = defaultSystem ? { patient: { defaultSystem } } : {};
  return (
    [
      ['pacs', pacs],
      ['vna', vna],
    ] as const
  ).map(([id, o]) => sourceSchema.parse({ id, qidoBase: o.dicomWebBase, defaultTimezone: TZ, retries: 0, mapping }));
}

function service(cfg = sources()): SyncService {
  return createSyncService({
    config: {
      sources: cfg,
      sync: {
        lookbackDays: 3,
        // One of a handful of studies is a large share: not a mass removal here.
        reconcile: { deletion: 'entered-in-error', maxRemovals: { count: 50, share: 1 } },
      },
    },
    store,
    sinks: [createEmbeddedSink(store), createFhirSink({ baseUrl: fhir.baseUrl })],
    validateResources: true,
  });
}

const stored = (uid: string) => store.resources.get<ImagingStudy>('ImagingStudy', imagingStudyId(uid));
const onServer = async (uid: string) =>
  (await fhir.all<ImagingStudy>('ImagingStudy')).find((s) => s.identifier?.[0].value === `urn:oid:${uid}`);
/** The WADO-RS addresses an ImagingStudy's endpoint references name, in order. */
async function addresses(refs: { reference?: string }[] | undefined, read: (id: string) => Promise<Endpoint>) {
  return Promise.all((refs ?? []).map(async (r) => (await read(r.reference!.split('/')[1]!)).address));
}
const storedAddresses = (refs: { reference?: string }[] | undefined) =>
  addresses(refs, async (id) => (await store.resources.get<Endpoint>('Endpoint', id))!);
const serverAddresses = (refs: { reference?: string }[] | undefined) =>
  addresses(refs, (id) => fhir.repo.readResource<any>('Endpoint', id) as Promise<Endpoint>);

describe('one patient identity: one ImagingStudy per study, kept whole', () => {
  beforeAll(async () => {
    fhir.repo.clear();
    store = openSqliteStore(':memory:');
    // The VNA first: the PACS's attributes must win anyway, being configured first.
    expect((await service().runOnce('vna')).counts).toMatchObject({ written: 4, failed: 0 });
    expect((await service().runOnce('pacs')).counts).toMatchObject({ written: 5, failed: 0 });
  }, 60000);

  it('a study both hold lists both Endpoints, in the store and on the FHIR server', async () => {
    for (const s of shared) {
      const mine = (await stored(s.studyUid))!;
      expect(await storedAddresses(mine.endpoint)).toEqual([pacs.dicomWebBase, vna.dicomWebBase]);
      const theirs = (await onServer(s.studyUid))!;
      expect(await serverAddresses(theirs.endpoint)).toEqual([pacs.dicomWebBase, vna.dicomWebBase]);
      expect(theirs.series?.[0].endpoint).toBeUndefined();
    }
    const single = (await stored(onlyOnPacs.studyUid))!;
    expect(await storedAddresses(single.endpoint)).toEqual([pacs.dicomWebBase]);
  });

  it('every merged ImagingStudy conforms to TW Core ImagingStudy-twcore', async () => {
    for (const s of [...shared, partialOnPacs, onlyOnPacs]) {
      const merged = (await stored(s.studyUid))!;
      expect(validateImagingStudy(merged).filter(isBlocking)).toEqual([]);
    }
  });

  it('series are the union; a series only the PACS holds names its Endpoint; the PACS’s attributes win', async () => {
    for (const s of [(await stored(partialOnPacs.studyUid))!, (await onServer(partialOnPacs.studyUid))!]) {
      expect(s.description).toBe('PACS description');
      expect(s.numberOfSeries).toBe(2);
      expect(s.numberOfInstances).toBe(3);
      const bySeries = new Map(s.series!.map((x) => [x.uid, x]));
      expect(bySeries.get(ct.seriesUid)?.endpoint).toBeUndefined();
      expect(bySeries.get(ct.seriesUid)?.instance).toHaveLength(2);
      expect(bySeries.get(localizer.seriesUid)?.endpoint).toHaveLength(1);
    }
    const stale = (await stored(partialOnPacs.studyUid))!;
    expect(await storedAddresses(stale.series!.find((x) => x.uid === localizer.seriesUid)!.endpoint)).toEqual([
      pacs.dicomWebBase,
    ]);
  });

  it.each(['store', 'live'] as const)('the API answers each study once (%s mode)', async (mode) => {
    const cfg = sources();
    const api = await serveApi({
      config: { mode, storeFallback: false, cache: { enabled: false }, auth: { type: 'none' } },
      sources: cfg.map((config) => ({ config, pacs: createPacsSource(config) })),
      store: store.resources,
    });
    try {
      const res = await api.http.get<Bundle>(
        `/ImagingStudy?patient:identifier=${encodeURIComponent(`${SHARED}|`)}MRN-77`,
      );
      expect(res.status).toBe(200);
      expect(matchIds(res.data)).toEqual([...shared, partialOnPacs, onlyOnPacs].map((s) => s.studyUid).sort());
      const one = res.data.entry!.find((e) => e.resource?.id === shared[0].studyUid)!.resource as ImagingStudy;
      expect(one.endpoint).toEqual([{ reference: 'Endpoint/pacs-pacs' }, { reference: 'Endpoint/pacs-vna' }]);
      const withEndpoints = await api.http.get<Bundle>(
        `/ImagingStudy?_id=${shared[0].studyUid}&_include=ImagingStudy:endpoint`,
      );
      expect(includes(withEndpoints.data).map((e) => (e as Endpoint).address)).toEqual([
        pacs.dicomWebBase,
        vna.dicomWebBase,
      ]);
    } finally {
      await api.close();
    }
  });

  it('a study deleted from the VNA stays with the PACS’s Endpoint; deleted from both, it is removed', async () => {
    const uid = shared[0].studyUid;
    await deleteFromOrthanc(vna, uid);
    expect((await service().sweep('vna')).status).toBe('ok');
    for (const s of [(await stored(uid))!, (await onServer(uid))!]) {
      expect(s.status).toBe('available');
      expect(s.endpoint).toHaveLength(1);
    }
    expect(await storedAddresses((await stored(uid))!.endpoint)).toEqual([pacs.dicomWebBase]);
    expect(await store.studies.get('vna', uid)).toMatchObject({ status: 'removed' });

    await deleteFromOrthanc(pacs, uid);
    expect((await service().sweep('pacs')).status).toBe('ok');
    expect((await stored(uid))!.status).toBe('entered-in-error');
    expect((await onServer(uid))!.status).toBe('entered-in-error');
    // The others stay as they were.
    expect((await stored(shared[1].studyUid))!.endpoint).toHaveLength(2);
  });
});

describe('no shared patient identity', () => {
  it('the second source’s copy of a study is a Study UID conflict, quarantined; the first stays as written', async () => {
    fhir.repo.clear();
    store = openSqliteStore(':memory:');
    const cfg = sources(null);
    expect((await service(cfg).runOnce('pacs')).counts).toMatchObject({ written: 4 });
    const second = await service(cfg).runOnce('vna');
    expect(second.counts).toMatchObject({ written: 0, quarantined: 3 });
    const q = await store.studies.get('vna', shared[1].studyUid);
    expect(q).toMatchObject({ status: 'quarantined', reason: 'study-uid-conflict' });
    expect(q!.lastError).toMatch(/defaultSystem/);
    const kept = (await stored(shared[1].studyUid))!;
    expect(kept.endpoint).toHaveLength(1);
    expect(kept.subject?.identifier?.system).toBe('urn:pacs-fhir-bridge:pacs:patient-id');
  });
});
