/**
 * Patient linking through the whole path: studies in a real Orthanc, the sync, the FHIR-server sink and
 * a real FHIR engine. `create` makes one Patient from what the DICOM data holds and links to it, falling
 * back to the identifier when the data lacks what Patient-twcore requires; `lookup` links to the Patient
 * the server already has.
 */
import axios from 'axios';
import type { ImagingStudy, Patient } from 'fhir/r4';
import { createFhirSink } from '../../../../src/sinks/fhir';
import type { PatientLinking } from '../../../../src/sinks/fhir';
import { openSqliteStore } from '../../../../src/state';
import { createSyncService } from '../../../../src/sync';
import { loadStudies, makeStudy, type SyntheticPatient } from '../../../fixtures/synthetic';
import { startFhirServer, type FhirTestServer } from '../../../harness/fhirServer';
import { startOrthanc, type OrthancServer } from '../../../harness/orthanc';
import { daysAgo, SOURCE_ID, sourceConfig } from '../../sync/common';

const SYSTEM = 'urn:oid:2.16.886.101.20003.20014';
let orthanc: OrthancServer;

// Two studies of one complete patient, and one patient without a birth date.
const complete: SyntheticPatient = {
  id: 'P-LINK-1',
  issuer: 'TW-HOSP-A',
  alphabetic: 'Lin^Mei Ling',
  ideographic: '林^美玲',
  birthDate: '19800202',
  sex: 'F',
};
const studies = [
  makeStudy({ studyUid: '2.25.88001', studyDate: daysAgo(1), patient: complete }),
  makeStudy({ studyUid: '2.25.88002', studyDate: daysAgo(2), patient: complete }),
  makeStudy({
    studyUid: '2.25.88003',
    studyDate: daysAgo(1),
    patient: { ...complete, id: 'P-LINK-2', birthDate: undefined },
  }),
];

beforeAll(async () => {
  orthanc = await startOrthanc();
  await loadStudies(orthanc, studies);
}, 60000);
afterAll(() => orthanc?.stop());

async function syncWith(fhir: FhirTestServer, linking: Partial<PatientLinking>) {
  const store = openSqliteStore(':memory:');
  const source = sourceConfig(orthanc.dicomWebBase, {
    mapping: { patient: { issuerSystems: { 'TW-HOSP-A': SYSTEM } } },
  });
  const sync = createSyncService({
    config: { sources: [source], sync: { lookbackDays: 5 } },
    store,
    sinks: [createFhirSink({ baseUrl: fhir.baseUrl, patientLinking: linking as PatientLinking })],
  });
  const run = await sync.runOnce(SOURCE_ID);
  await store.close();
  const byUid = new Map(
    (await fhir.all<ImagingStudy>('ImagingStudy')).map((s) => [s.identifier![0].value!.replace('urn:oid:', ''), s]),
  );
  return { run, byUid, patients: await fhir.all<Patient>('Patient') };
}

it('create: one Patient per identifier, linked by id; an incomplete patient falls back to the identifier', async () => {
  const fhir = await startFhirServer();
  try {
    const { run, byUid, patients } = await syncWith(fhir, { mode: 'create', fallback: 'identifier' });
    expect(run.counts).toMatchObject({ written: 3, failed: 0 });
    expect(patients).toHaveLength(1);
    const [patient] = patients;
    expect(patient.identifier).toEqual([expect.objectContaining({ system: SYSTEM, value: 'P-LINK-1' })]);
    expect(patient).toMatchObject({ gender: 'female', birthDate: '1980-02-02' });
    for (const uid of ['2.25.88001', '2.25.88002'])
      expect(byUid.get(uid)!.subject!.reference).toBe(`Patient/${patient.id}`);
    expect(byUid.get('2.25.88003')!.subject).toMatchObject({ identifier: { system: SYSTEM, value: 'P-LINK-2' } });
    expect(byUid.get('2.25.88003')!.subject!.reference).toBeUndefined();
  } finally {
    await fhir.stop();
  }
});

it('lookup: links to the Patient the server already holds, else to the identifier', async () => {
  const fhir = await startFhirServer();
  try {
    const { data: existing } = await axios.post<Patient>(
      `${fhir.baseUrl}/Patient`,
      { resourceType: 'Patient', identifier: [{ system: SYSTEM, value: 'P-LINK-1' }] },
      { headers: { 'Content-Type': 'application/fhir+json' } },
    );
    const { byUid, patients } = await syncWith(fhir, { mode: 'lookup', onNone: 'identifier' });
    expect(patients).toHaveLength(1);
    for (const uid of ['2.25.88001', '2.25.88002'])
      expect(byUid.get(uid)!.subject!.reference).toBe(`Patient/${existing.id}`);
    expect(byUid.get('2.25.88003')!.subject).toMatchObject({ identifier: { system: SYSTEM, value: 'P-LINK-2' } });
  } finally {
    await fhir.stop();
  }
});
