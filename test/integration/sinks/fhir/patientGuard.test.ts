/**
 * The profile guard covers the Patients the FHIR sink creates (`create` linking), through the whole path: studies
 * in a real Orthanc, the sync, the FHIR sink with the guard the CLI gives it (createPatientGuard: Patient-twcore
 * from profiles/), a real FHIR engine and the embedded store. A valid Patient is created and linked; a Patient the
 * profile refuses is never sent: its study fails with the reason recorded, is retried, and dead-lettered after
 * maxAttempts like any failing study. The mapper already refuses most bad patient data in the ImagingStudy (its
 * subject), so the refused Patient's facts are spoilt between the sync and the sink (a birth date in year 0000),
 * which is what the guard exists for: a Patient the mapper's checks do not see.
 */
import type { ImagingStudy, Patient } from 'fhir/r4';
import type { Sink } from '../../../../src/sinks';
import { createPatientGuard } from '../../../../src/mapping';
import { createEmbeddedSink } from '../../../../src/sinks/embeddedSink';
import { createFhirSink } from '../../../../src/sinks/fhir';
import type { PatientLinking } from '../../../../src/sinks/fhir';
import { openSqliteStore, type SqliteStateStore } from '../../../../src/state';
import { createSyncService } from '../../../../src/sync';
import { loadStudies, makeStudy, type SyntheticPatient } from '../../../fixtures/synthetic';
import { startFhirServer, type FhirTestServer } from '../../../harness/fhirServer';
import { startOrthanc, type OrthancServer } from '../../../harness/orthanc';
import { daysAgo, SOURCE_ID, sourceConfig } from '../../sync/common';

const SYSTEM = 'urn:oid:2.16.886.101.20003.20014';
const good: SyntheticPatient = {
  id: 'P-GUARD-1',
  issuer: 'TW-HOSP-A',
  alphabetic: 'Lin^Mei Ling',
  birthDate: '19800202',
  sex: 'F',
};
const bad: SyntheticPatient = { ...good, id: 'P-GUARD-2', alphabetic: 'Wang^Dawei', birthDate: '19750505' };
const goodStudy = makeStudy({ studyUid: '2.25.99101', studyDate: daysAgo(1), patient: good });
const badStudy = makeStudy({ studyUid: '2.25.99102', studyDate: daysAgo(1), patient: bad });

let orthanc: OrthancServer;
let fhir: FhirTestServer;
let store: SqliteStateStore;

beforeAll(async () => {
  [orthanc, fhir] = await Promise.all([startOrthanc(), startFhirServer()]);
  await loadStudies(orthanc, [goodStudy, badStudy]);
  store = openSqliteStore(':memory:');
}, 60000);

afterAll(async () => {
  store?.close();
  await fhir?.stop();
  await orthanc?.stop();
});

function service() {
  const source = sourceConfig(orthanc.dicomWebBase, {
    mapping: { patient: { issuerSystems: { 'TW-HOSP-A': SYSTEM } } },
  });
  const linking = { mode: 'create', fallback: 'identifier' } as PatientLinking;
  const sink = createFhirSink(
    { baseUrl: fhir.baseUrl, patientLinking: linking },
    { patientGuard: createPatientGuard() },
  );
  // The bad study's Patient facts spoilt on their way to the sink: a year R4 dates do not have.
  const spoiling: Sink = {
    name: sink.name,
    removeStudy: (...args) => sink.removeStudy(...args),
    writeBatch: (writes) =>
      sink.writeBatch(
        writes.map((w) =>
          w.studyUid === badStudy.studyUid ? { ...w, patient: { ...w.patient!, birthDate: '0000-05-05' } } : w,
        ),
      ),
  };
  return createSyncService({
    config: { sources: [source], sync: { lookbackDays: 5, maxAttempts: 2, backoffBaseSeconds: 0 } },
    store,
    sinks: [createEmbeddedSink(store), spoiling],
  });
}

it('creates a valid Patient, and fails (recorded, retried, dead-lettered) the study whose Patient is invalid', async () => {
  const run = await service().runOnce(SOURCE_ID);
  expect(run).toMatchObject({ status: 'partial', counts: { written: 1, failed: 1 } });

  const patients = await fhir.all<Patient>('Patient');
  expect(patients.map((p) => p.identifier?.[0])).toEqual([{ system: SYSTEM, value: good.id }]);
  const studies = await fhir.all<ImagingStudy>('ImagingStudy');
  expect(studies.map((s) => s.identifier?.[0]?.value)).toEqual([`urn:oid:${goodStudy.studyUid}`]);
  expect(studies[0]!.subject?.reference).toBe(`Patient/${patients[0]!.id}`);

  const failing = await store.studies.get(SOURCE_ID, badStudy.studyUid);
  expect(failing).toMatchObject({ status: 'failing', attempts: 1 });
  expect(failing!.lastError).toBe(
    'sink rejected: fhir: patient guard: the Patient to create fails Patient-twcore: Patient.birthDate: Invalid date format',
  );
  // Never the patient's values, in what is recorded.
  for (const value of [bad.id, 'Wang', 'Dawei', '0000-05-05']) expect(failing!.lastError).not.toContain(value);

  // Retried on the next run (the guard refuses it again), then dead-lettered at maxAttempts: never skipped.
  const again = await service().runOnce(SOURCE_ID);
  expect(again).toMatchObject({ counts: { failed: 1, dead: 1 } });
  expect(await store.studies.get(SOURCE_ID, badStudy.studyUid)).toMatchObject({ status: 'dead', attempts: 2 });
  expect(await fhir.all<Patient>('Patient')).toHaveLength(1);
});

it('the guard itself: Patient-twcore from profiles/, undefined for a valid Patient', () => {
  const guard = createPatientGuard();
  const patient: Patient = {
    resourceType: 'Patient',
    meta: { profile: ['https://twcore.mohw.gov.tw/ig/twcore/StructureDefinition/Patient-twcore'] },
    identifier: [{ system: SYSTEM, value: 'A123456789' }],
    gender: 'female',
    birthDate: '1980-02-02',
  };
  expect(guard(patient)).toBeUndefined();
  expect(guard({ ...patient, birthDate: '1980-13-45' })).toBe('Patient.birthDate: Invalid date format');
});
