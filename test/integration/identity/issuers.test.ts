/**
 * Two issuers, one Patient ID: studies of Q12345 under Issuer of Patient ID TWHOSP (configured), OTHERHOSP and
 * THIRDHOSP (not configured) and with no issuer, in a real Orthanc, synced into the embedded store and a real
 * FHIR engine (Medplum). Each must stay its own patient in the store, in the API's patient searches and in the
 * FHIR server under every patient-linking mode; Patient.name.text equals ImagingStudy.subject.display.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import type { Bundle, ImagingStudy, Patient } from 'fhir/r4';
import { profilesDir } from '../../../src/mapping';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { createFhirSink, type PatientLinking } from '../../../src/sinks/fhir';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService } from '../../../src/sync';
import { createPacsSource } from '../../../src/dicomweb';
import { loadStudies, makeStudy, type SyntheticPatient, type SyntheticStudy } from '../../fixtures/synthetic';
import { startFhirServer, type FhirTestServer } from '../../harness/fhirServer';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { matchIds, serveApi } from '../api/helpers';
import { daysAgo, SOURCE_ID, sourceConfig } from '../sync/common';

const TW_SYSTEM = 'urn:oid:2.16.886.101.20003.20014';
const DEFAULT_SYSTEM = `urn:pacs-fhir-bridge:${SOURCE_ID}:patient-id`;
const issuerUrn = (issuer: string) => `urn:pacs-fhir-bridge:${SOURCE_ID}:issuer:${issuer}:patient-id`;

const patient = (issuer: string | undefined, alphabetic: string, birthDate: string): SyntheticPatient => ({
  id: 'Q12345',
  ...(issuer ? { issuer } : {}),
  alphabetic,
  birthDate,
  sex: 'F',
});
const studies = {
  tw: makeStudy({ studyUid: '2.25.1401', studyDate: daysAgo(1), patient: patient('TWHOSP', '陳^大文', '19700101') }),
  other: makeStudy({
    studyUid: '2.25.1402',
    studyDate: daysAgo(1),
    patient: patient('OTHERHOSP', 'Smith^Jane', '19800202'),
  }),
  third: makeStudy({
    studyUid: '2.25.1403',
    studyDate: daysAgo(2),
    patient: patient('THIRDHOSP', '林^美玲', '19900303'),
  }),
  none: makeStudy({ studyUid: '2.25.1404', studyDate: daysAgo(2), patient: patient(undefined, 'Doe^Ann', '20000404') }),
};
const all: SyntheticStudy[] = Object.values(studies);
/** The identifier system each study's patient must get. */
const expectedSystem: Record<string, string> = {
  [studies.tw.studyUid]: TW_SYSTEM,
  [studies.other.studyUid]: issuerUrn('OTHERHOSP'),
  [studies.third.studyUid]: issuerUrn('THIRDHOSP'),
  [studies.none.studyUid]: DEFAULT_SYSTEM,
};

let orthanc: OrthancServer;
let fhir: FhirTestServer;
const source = () =>
  sourceConfig(orthanc.dicomWebBase, { mapping: { patient: { issuerSystems: { TWHOSP: TW_SYSTEM } } } });

beforeAll(async () => {
  [orthanc, fhir] = await Promise.all([startOrthanc(), startFhirServer()]);
  await loadStudies(orthanc, all);
}, 120000);
afterAll(async () => {
  await fhir?.stop();
  await orthanc?.stop();
});

async function syncWith(linking: Partial<PatientLinking>, store: SqliteStateStore = openSqliteStore(':memory:')) {
  const sync = createSyncService({
    config: { sources: [source()], sync: { lookbackDays: 5 } },
    store,
    sinks: [
      createEmbeddedSink(store),
      createFhirSink({ baseUrl: fhir.baseUrl, patientLinking: linking as PatientLinking }),
    ],
    validateResources: true,
  });
  const run = await sync.runOnce(SOURCE_ID, { undated: false });
  expect(run.counts).toMatchObject({ written: all.length, failed: 0 });
  const byUid = new Map(
    (await fhir.all<ImagingStudy>('ImagingStudy')).map((s) => [s.identifier![0].value!.replace('urn:oid:', ''), s]),
  );
  return { store, byUid, patients: await fhir.all<Patient>('Patient') };
}

async function addPatient(system: string): Promise<string> {
  const p = await fhir.repo.createResource<any>({
    resourceType: 'Patient',
    identifier: [{ system, value: 'Q12345' }],
  });
  return p.id as string;
}

beforeEach(() => fhir.repo.clear());

describe('store and API', () => {
  let store: SqliteStateStore;
  beforeAll(async () => {
    fhir.repo.clear();
    ({ store } = await syncWith({ mode: 'identifier' }));
  }, 60000);
  afterAll(() => store?.close());

  it('the store holds four studies of four patients', async () => {
    const subjects = (await store.resources.listImagingStudies()).map((s) => [s.id, s.subject?.identifier]);
    expect(Object.fromEntries(subjects)).toEqual(
      Object.fromEntries(all.map((s) => [s.studyUid, { system: expectedSystem[s.studyUid], value: 'Q12345' }])),
    );
  });

  it.each(['store', 'live'] as const)(
    'patient=Patient/pat-Q12345 finds one issuer’s studies only (%s mode)',
    async (mode) => {
      const serve = (system?: string) =>
        serveApi({
          config: {
            mode,
            storeFallback: false,
            cache: { enabled: false },
            auth: { type: 'none' },
            patientIdRule: { prefix: 'pat-', ...(system ? { system } : {}) },
          },
          sources: [{ config: source(), pacs: createPacsSource(source()) }],
          store: store.resources,
        });
      const ruled = await serve(TW_SYSTEM);
      const plain = await serve();
      try {
        const ids = async (api: typeof ruled, q: string) => {
          const res = await api.http.get<Bundle>(`/ImagingStudy?${q}`);
          expect(res.status).toBe(200);
          return matchIds(res.data);
        };
        // The rule's system names one issuer; without one, a Patient id means the issuer-less Patient ID.
        expect(await ids(ruled, 'patient=Patient/pat-Q12345')).toEqual([studies.tw.studyUid]);
        expect(await ids(plain, 'patient=pat-Q12345')).toEqual([studies.none.studyUid]);
        expect(
          await ids(plain, `patient:identifier=${encodeURIComponent(`${issuerUrn('OTHERHOSP')}|Q12345`)}`),
        ).toEqual([studies.other.studyUid]);
        // Asking for the Patient ID in any system is asked for explicitly, and answers all four.
        expect(await ids(plain, 'patient:identifier=Q12345')).toEqual(all.map((s) => s.studyUid).sort());
      } finally {
        await ruled.close();
        await plain.close();
      }
    },
  );
});

describe('FHIR server, every linking mode', () => {
  it('identifier: four subjects with four systems', async () => {
    const { byUid, patients } = await syncWith({ mode: 'identifier' });
    expect(patients).toEqual([]);
    for (const s of all)
      expect(byUid.get(s.studyUid)!.subject?.identifier).toEqual({
        system: expectedSystem[s.studyUid],
        value: 'Q12345',
      });
  });

  it('conditional: four conditional references, one per system', async () => {
    const { byUid } = await syncWith({ mode: 'conditional' });
    const refs = all.map((s) => byUid.get(s.studyUid)!.subject?.reference);
    expect(new Set(refs).size).toBe(4);
    for (const s of all)
      expect(decodeURIComponent(byUid.get(s.studyUid)!.subject!.reference!)).toBe(
        `Patient?identifier=${expectedSystem[s.studyUid]}|Q12345`,
      );
  });

  it('lookup: each study links to its own issuer’s Patient, never to another issuer’s', async () => {
    // Only the TWHOSP patient and the issuer-less one are registered.
    const tw = await addPatient(TW_SYSTEM);
    const none = await addPatient(DEFAULT_SYSTEM);
    const { byUid } = await syncWith({ mode: 'lookup', onNone: 'identifier' });
    expect(byUid.get(studies.tw.studyUid)!.subject?.reference).toBe(`Patient/${tw}`);
    expect(byUid.get(studies.none.studyUid)!.subject?.reference).toBe(`Patient/${none}`);
    for (const s of [studies.other, studies.third]) {
      expect(byUid.get(s.studyUid)!.subject?.reference).toBeUndefined();
      expect(byUid.get(s.studyUid)!.subject?.identifier?.system).toBe(expectedSystem[s.studyUid]);
    }
  });

  it('create: four Patients, each study linked to its own; Patient.name.text equals subject.display', async () => {
    const { byUid, patients } = await syncWith({ mode: 'create', fallback: 'fail' });
    expect(patients).toHaveLength(4);
    expect(patients.map((p) => p.identifier?.[0].system).sort()).toEqual(Object.values(expectedSystem).sort());
    for (const s of all) {
      const study = byUid.get(s.studyUid)!;
      const p = patients.find((x) => study.subject?.reference === `Patient/${x.id}`);
      expect(p?.identifier?.[0]).toMatchObject({ system: expectedSystem[s.studyUid], value: 'Q12345' });
      expect(p?.name?.[0].text).toBe(study.subject?.display);
    }
    // Each created Patient conforms to TW Core Patient-twcore.
    const definitions = readdirSync(profilesDir())
      .filter((f) => f.startsWith('StructureDefinition-'))
      .map((f) => ({ resource: JSON.parse(readFileSync(path.join(profilesDir(), f), 'utf8')) }));
    indexStructureDefinitionBundle({ resourceType: 'Bundle', type: 'collection', entry: definitions } as any);
    const profile = definitions.find((d) => d.resource.url?.endsWith('/Patient-twcore'))!.resource;
    for (const p of patients) expect(() => validateResource(p as any, { profile })).not.toThrow();
    expect(byUid.get(studies.tw.studyUid)!.subject?.display).toBe('陳大文');
    expect(byUid.get(studies.third.studyUid)!.subject?.display).toBe('林美玲');
    expect(byUid.get(studies.other.studyUid)!.subject?.display).toBe('Jane Smith');
  });
});
