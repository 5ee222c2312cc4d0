/**
 * Two hospitals, one Patient ID: hospital A's PACS and hospital B's PACS (two real Orthancs) each hold a study of
 * Patient ID 12345 with no Issuer of Patient ID. Without a configured defaultSystem each source's patients are its
 * own: two patients in the store, in the API's patient searches and on the FHIR server under every linking mode.
 * Sources that declare one shared defaultSystem (one MRN space) give one patient.
 */
import type { Bundle, ImagingStudy, Patient } from 'fhir/r4';
import { sourceSchema, type SourceConfig } from '../../../src/config';
import { createPacsSource } from '../../../src/dicomweb';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { createFhirSink, type PatientLinking } from '../../../src/sinks/fhir';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService } from '../../../src/sync';
import { loadStudies, makeStudy } from '../../fixtures/synthetic';
import { startFhirServer, type FhirTestServer } from '../../harness/fhirServer';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { matchIds, serveApi } from '../api/helpers';
import { daysAgo, TZ } from '../sync/common';

const SHARED = 'urn:oid:2.16.886.101.20003.20099';
const studyA = makeStudy({
  studyUid: '2.25.2101',
  studyDate: daysAgo(1),
  patient: { id: '12345', alphabetic: 'Chen^Mei', birthDate: '19700101', sex: 'F' },
});
const studyB = makeStudy({
  studyUid: '2.25.2102',
  studyDate: daysAgo(1),
  patient: { id: '12345', alphabetic: 'Wang^Tai', birthDate: '19500505', sex: 'M' },
});

let pacsA: OrthancServer;
let pacsB: OrthancServer;
let fhir: FhirTestServer;

beforeAll(async () => {
  [pacsA, pacsB, fhir] = await Promise.all([startOrthanc(), startOrthanc(), startFhirServer()]);
  await Promise.all([loadStudies(pacsA, [studyA]), loadStudies(pacsB, [studyB])]);
}, 120000);
afterAll(async () => {
  await fhir?.stop();
  await Promise.all([pacsA?.stop(), pacsB?.stop()]);
});
beforeEach(() => fhir.repo.clear());

function sources(defaultSystem?: string): SourceConfig[] {
  const mapping = defaultSystem ? { patient: { defaultSystem } } : {};
  return [
    ['hosp-a', pacsA],
    ['hosp-b', pacsB],
  ].map(([id, pacs]) =>
    sourceSchema.parse({
      id,
      qidoBase: (pacs as OrthancServer).dicomWebBase,
      defaultTimezone: TZ,
      retries: 0,
      mapping,
    }),
  );
}

async function syncBoth(linking: Partial<PatientLinking>, defaultSystem?: string) {
  const store = openSqliteStore(':memory:');
  const cfg = sources(defaultSystem);
  const sync = createSyncService({
    config: { sources: cfg, sync: { lookbackDays: 5 } },
    store,
    sinks: [
      createEmbeddedSink(store),
      createFhirSink({ baseUrl: fhir.baseUrl, patientLinking: linking as PatientLinking }),
    ],
    validateResources: true,
  });
  for (const s of cfg) expect((await sync.runOnce(s.id, { undated: false })).counts).toMatchObject({ written: 1 });
  const fhirStudies = await fhir.all<ImagingStudy>('ImagingStudy');
  return { store, cfg, fhirStudies, patients: await fhir.all<Patient>('Patient') };
}

/** The patient a study names: its conditional reference (then the FHIR sink sends no identifier), else identifier. */
const subjectKeys = (studies: ImagingStudy[]) =>
  new Set(
    studies.map((s) =>
      s.subject?.reference?.startsWith('Patient?')
        ? decodeURIComponent(s.subject.reference)
        : `${s.subject?.identifier?.system}|${s.subject?.identifier?.value}`,
    ),
  );
/** The FHIR server's ImagingStudies by Study Instance UID (the server assigns its own ids). */
const byStudyUid = (studies: ImagingStudy[]) =>
  new Map(studies.map((s) => [s.identifier![0].value!.replace('urn:oid:', ''), s]));

describe('no defaultSystem: each source its own patients', () => {
  let store: SqliteStateStore;
  let cfg: SourceConfig[];
  beforeAll(async () => {
    fhir.repo.clear();
    ({ store, cfg } = await syncBoth({ mode: 'identifier' }));
  }, 60000);
  afterAll(() => store?.close());

  it('the store holds two patients, each in its source’s system', async () => {
    const subjects = Object.fromEntries(
      (await store.resources.listImagingStudies()).map((s) => [s.id, s.subject?.identifier]),
    );
    expect(subjects).toEqual({
      [studyA.studyUid]: { system: 'urn:pacs-fhir-bridge:hosp-a:patient-id', value: '12345' },
      [studyB.studyUid]: { system: 'urn:pacs-fhir-bridge:hosp-b:patient-id', value: '12345' },
    });
  });

  it.each(['store', 'live'] as const)('a patient search names one hospital’s patient (%s mode)', async (mode) => {
    const api = await serveApi({
      config: {
        mode,
        storeFallback: false,
        cache: { enabled: false },
        auth: { type: 'none' },
        patientIdRule: { prefix: 'pat-' },
      },
      sources: cfg.map((config) => ({ config, pacs: createPacsSource(config) })),
      store: store.resources,
    });
    try {
      const ids = async (q: string) => {
        const res = await api.http.get<Bundle>(`/ImagingStudy?${q}`);
        expect(res.status).toBe(200);
        return matchIds(res.data);
      };
      const bySystem = (source: string) =>
        `patient:identifier=${encodeURIComponent(`urn:pacs-fhir-bridge:${source}:patient-id|12345`)}`;
      expect(await ids(bySystem('hosp-a'))).toEqual([studyA.studyUid]);
      expect(await ids(bySystem('hosp-b'))).toEqual([studyB.studyUid]);
      // Patient ID in any system is asked for explicitly, and answers both.
      expect(await ids('patient:identifier=12345')).toEqual([studyA.studyUid, studyB.studyUid].sort());
    } finally {
      await api.close();
    }
  });
});

describe('FHIR server, every linking mode', () => {
  it.each([
    { mode: 'identifier' },
    { mode: 'conditional' },
    { mode: 'lookup', onNone: 'identifier' },
  ] as Partial<PatientLinking>[])('$mode: two subjects, two systems', async (linking) => {
    const { store, fhirStudies } = await syncBoth(linking);
    store.close();
    expect(fhirStudies).toHaveLength(2);
    expect(subjectKeys(fhirStudies)).toEqual(
      new Set(
        ['hosp-a', 'hosp-b'].map((h) =>
          linking.mode === 'conditional'
            ? `Patient?identifier=urn:pacs-fhir-bridge:${h}:patient-id|12345`
            : `urn:pacs-fhir-bridge:${h}:patient-id|12345`,
        ),
      ),
    );
  });

  it('lookup: a Patient registered in hospital A’s system is never linked to hospital B’s study', async () => {
    const a = await fhir.repo.createResource<any>({
      resourceType: 'Patient',
      identifier: [{ system: 'urn:pacs-fhir-bridge:hosp-a:patient-id', value: '12345' }],
    });
    const { store, fhirStudies } = await syncBoth({ mode: 'lookup', onNone: 'identifier' });
    store.close();
    const byId = byStudyUid(fhirStudies);
    expect(byId.get(studyA.studyUid)?.subject?.reference).toBe(`Patient/${a.id}`);
    expect(byId.get(studyB.studyUid)?.subject?.reference).toBeUndefined();
  });

  it('create: two Patients, one per hospital', async () => {
    const { store, fhirStudies, patients } = await syncBoth({ mode: 'create', fallback: 'fail' });
    store.close();
    expect(patients.map((p) => p.identifier?.[0].system).sort()).toEqual([
      'urn:pacs-fhir-bridge:hosp-a:patient-id',
      'urn:pacs-fhir-bridge:hosp-b:patient-id',
    ]);
    expect(new Set(fhirStudies.map((s) => s.subject?.reference)).size).toBe(2);
  });
});

describe('one shared defaultSystem: one patient', () => {
  it('identifier: both studies name the same patient', async () => {
    const { store, fhirStudies } = await syncBoth({ mode: 'identifier' }, SHARED);
    const stored = await store.resources.listImagingStudies();
    store.close();
    expect([...subjectKeys(stored)]).toEqual([`${SHARED}|12345`]);
    expect([...subjectKeys(fhirStudies)]).toEqual([`${SHARED}|12345`]);
  });

  it('create: one Patient, both studies linked to it', async () => {
    const { store, fhirStudies, patients } = await syncBoth({ mode: 'create', fallback: 'fail' }, SHARED);
    store.close();
    expect(patients).toHaveLength(1);
    expect(fhirStudies.map((s) => s.subject?.reference)).toEqual([
      `Patient/${patients[0].id}`,
      `Patient/${patients[0].id}`,
    ]);
  });
});
