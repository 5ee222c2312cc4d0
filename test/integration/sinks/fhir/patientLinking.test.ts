/**
 * Each patient linking mode gives the reference it promises, including the fallbacks, against a real
 * FHIR engine over HTTP.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import type { ImagingStudy, Patient } from 'fhir/r4';
import { createFhirSink, type FhirSinkInput } from '../../../../src/sinks/fhir';
import type { WriteOutcome } from '../../../../src/sinks/sink';
import { startFhirServer, type FhirTestServer } from '../../../harness/fhirServer';
import { PATIENT_SYSTEM, studyWrite } from './studies';

const TWCORE_DIR = path.resolve(__dirname, '../../../../profiles/twcore-0.3.2');
const PATIENT_TWCORE = 'https://twcore.mohw.gov.tw/ig/twcore/StructureDefinition/Patient-twcore';

let server: FhirTestServer;

beforeAll(async () => {
  server = await startFhirServer();
});
afterAll(() => server?.stop());
beforeEach(async () => {
  server.repo.clear();
  server.resetRequests();
});

const sinkWith = (patientLinking: Record<string, unknown>, extra: Partial<FhirSinkInput> = {}) =>
  createFhirSink({ baseUrl: server.baseUrl, patientLinking, ...extra } as FhirSinkInput);

async function storedStudy(uid: string): Promise<ImagingStudy> {
  const all = await server.all<ImagingStudy>('ImagingStudy');
  const found = all.filter((s) => s.identifier?.some((i) => i.value === `urn:oid:${uid}`));
  expect(found).toHaveLength(1);
  return found[0];
}

async function addPatient(value: string): Promise<string> {
  const p = await server.repo.createResource<any>({
    resourceType: 'Patient',
    identifier: [{ system: PATIENT_SYSTEM, value }],
    gender: 'female',
    birthDate: '1970-01-01',
  });
  return p.id;
}

function ok(o: WriteOutcome) {
  if (!o.ok) throw new Error(`expected success, got: ${o.error}`);
  return o;
}

describe('identifier', () => {
  it('writes a logical reference by identifier and looks nothing up', async () => {
    const [o] = await sinkWith({ mode: 'identifier' }).writeBatch([studyWrite('1.2.9.1.1', { patientId: 'A1' })]);
    expect(ok(o).patientLink).toEqual({ mode: 'identifier' });
    expect((await storedStudy('1.2.9.1.1')).subject).toEqual({
      type: 'Patient',
      identifier: { system: PATIENT_SYSTEM, value: 'A1' },
      display: 'Test^Patient',
    });
    expect(server.requests.filter((r) => r.path.startsWith('Patient'))).toHaveLength(0);
    expect(await server.all('Patient')).toHaveLength(0);
  });
});

describe('conditional', () => {
  it('writes the conditional reference Patient?identifier=system|value into the transaction', async () => {
    const [o] = await sinkWith({ mode: 'conditional' }).writeBatch([studyWrite('1.2.9.2.1', { patientId: 'B1' })]);
    expect(ok(o).patientLink).toEqual({ mode: 'conditional' });
    // @medplum/fhir-router does not resolve conditional references, so it stores them as sent.
    expect((await storedStudy('1.2.9.2.1')).subject?.reference).toBe(`Patient?identifier=${PATIENT_SYSTEM}|B1`);
  });
});

describe('lookup', () => {
  it('references the one Patient with the identifier, searching once per batch and caching', async () => {
    const ids = await Promise.all(['C1', 'C2', 'C3'].map(addPatient));
    const sink = sinkWith({ mode: 'lookup' });
    const outcomes = await sink.writeBatch(
      ['C1', 'C2', 'C3'].map((p, i) => studyWrite(`1.2.9.3.${i + 1}`, { patientId: p })),
    );
    outcomes.forEach((o) => expect(ok(o).patientLink).toEqual({ mode: 'lookup' }));
    for (let i = 0; i < 3; i++)
      expect((await storedStudy(`1.2.9.3.${i + 1}`)).subject?.reference).toBe(`Patient/${ids[i]}`);
    expect(sink.stats().requests.byKind.lookup).toBe(1);

    // Identifiers with FHIR search separators in them are escaped, not split (the router mishandles an escaped "|").
    const odd = await addPatient('K,1$2');
    const [k] = await sink.writeBatch([studyWrite('1.2.9.3.9', { patientId: 'K,1$2' })]);
    expect(ok(k).patientLink).toEqual({ mode: 'lookup' });
    expect((await storedStudy('1.2.9.3.9')).subject?.reference).toBe(`Patient/${odd}`);

    // Cached: another study of C1 needs no search.
    await sink.writeBatch([studyWrite('1.2.9.3.4', { patientId: 'C1' })]);
    expect(sink.stats().requests.byKind.lookup).toBe(2);
    expect((await storedStudy('1.2.9.3.4')).subject?.reference).toBe(`Patient/${ids[0]}`);
  });

  it('no match: falls back to the identifier reference (default) with the reason, or fails retryably', async () => {
    const [fallback] = await sinkWith({ mode: 'lookup' }).writeBatch([studyWrite('1.2.9.4.1', { patientId: 'D1' })]);
    expect(ok(fallback).patientLink).toEqual({ mode: 'identifier', fallbackReason: 'no Patient has this identifier' });
    expect((await storedStudy('1.2.9.4.1')).subject?.identifier).toEqual({ system: PATIENT_SYSTEM, value: 'D1' });

    const [failed] = await sinkWith({ mode: 'lookup', onNone: 'fail' }).writeBatch([
      studyWrite('1.2.9.4.2', { patientId: 'D2' }),
    ]);
    expect(failed).toMatchObject({ ok: false, retryable: true });
    expect(!failed.ok && failed.error).toMatch(/no Patient has this identifier/);
    expect(
      (await server.all<ImagingStudy>('ImagingStudy')).some((s) =>
        s.identifier?.some((i) => i.value === 'urn:oid:1.2.9.4.2'),
      ),
    ).toBe(false);
  });

  it('several matches: fails by default, or falls back to the identifier when configured', async () => {
    await addPatient('E1');
    await addPatient('E1');
    const [failed] = await sinkWith({ mode: 'lookup' }).writeBatch([studyWrite('1.2.9.5.1', { patientId: 'E1' })]);
    expect(failed).toMatchObject({ ok: false, retryable: true });
    expect(!failed.ok && failed.error).toMatch(/2 Patients have this identifier/);

    const [fallback] = await sinkWith({ mode: 'lookup', onMultiple: 'identifier' }).writeBatch([
      studyWrite('1.2.9.5.2', { patientId: 'E1' }),
    ]);
    expect(ok(fallback).patientLink).toEqual({ mode: 'identifier', fallbackReason: '2 Patients have this identifier' });
    expect((await storedStudy('1.2.9.5.2')).subject?.identifier?.value).toBe('E1');
  });
});

describe('create', () => {
  it('creates one Patient-twcore Patient per identifier, conditionally, and references it', async () => {
    const sink = sinkWith({ mode: 'create' });
    const facts = {
      gender: 'male' as const,
      birthDate: '1980-05-17',
      name: { use: 'official' as const, family: 'Chen', given: ['Wei'] },
    };
    const outcomes = await sink.writeBatch([
      studyWrite('1.2.9.6.1', { patientId: 'F1', patient: facts }),
      studyWrite('1.2.9.6.2', { patientId: 'F1', patient: facts }),
    ]);
    outcomes.forEach((o) => expect(ok(o).patientLink).toEqual({ mode: 'create' }));
    // Again, in a later batch: the conditional create finds the Patient instead of making another.
    await sink.writeBatch([studyWrite('1.2.9.6.3', { patientId: 'F1', patient: facts })]);

    const patients = await server.all<Patient>('Patient');
    expect(patients).toHaveLength(1);
    const patient = patients[0];
    expect(patient).toMatchObject({
      meta: { profile: [PATIENT_TWCORE] },
      identifier: [{ system: PATIENT_SYSTEM, value: 'F1' }],
      gender: 'male',
      birthDate: '1980-05-17',
      name: [{ family: 'Chen', given: ['Wei'] }],
    });
    for (const uid of ['1.2.9.6.1', '1.2.9.6.2', '1.2.9.6.3'])
      expect((await storedStudy(uid)).subject?.reference).toBe(`Patient/${patient.id}`);
  });

  it('the created Patient conforms to TW Core Patient-twcore', async () => {
    await sinkWith({ mode: 'create' }).writeBatch([
      studyWrite('1.2.9.7.1', { patientId: 'G1', patient: { gender: 'female', birthDate: '1990-01-02' } }),
    ]);
    const [patient] = await server.all<Patient>('Patient');
    const definitions = readdirSync(TWCORE_DIR)
      .filter((f) => f.startsWith('StructureDefinition-'))
      .map((f) => ({ resource: JSON.parse(readFileSync(path.join(TWCORE_DIR, f), 'utf8')) }));
    indexStructureDefinitionBundle({ resourceType: 'Bundle', type: 'collection', entry: definitions } as any);
    const profile = definitions.find((d) => d.resource.url === PATIENT_TWCORE)!.resource;
    expect(() => validateResource(patient as any, { profile })).not.toThrow();
    // The validator does check the profile: without gender it rejects.
    expect(() => validateResource({ ...patient, gender: undefined } as any, { profile })).toThrow(/gender/);
  });

  it('without what Patient-twcore requires, applies the fallback and records why', async () => {
    const noBirthDate = { gender: 'female' as const };
    const [byIdentifier] = await sinkWith({ mode: 'create' }).writeBatch([
      studyWrite('1.2.9.8.1', { patientId: 'H1', patient: noBirthDate }),
    ]);
    expect(ok(byIdentifier).patientLink).toEqual({
      mode: 'identifier',
      fallbackReason: 'Patient-twcore needs birthDate, absent from the DICOM data',
    });
    expect((await storedStudy('1.2.9.8.1')).subject?.identifier?.value).toBe('H1');

    const [conditional] = await sinkWith({ mode: 'create', fallback: 'conditional' }).writeBatch([
      studyWrite('1.2.9.8.2', { patientId: 'H2', patient: false }),
    ]);
    expect(ok(conditional).patientLink?.fallbackReason).toBe(
      'Patient-twcore needs gender, birthDate, absent from the DICOM data',
    );
    expect((await storedStudy('1.2.9.8.2')).subject?.reference).toBe(`Patient?identifier=${PATIENT_SYSTEM}|H2`);

    const [failed] = await sinkWith({ mode: 'create', fallback: 'fail' }).writeBatch([
      studyWrite('1.2.9.8.3', { patientId: 'H3', patient: noBirthDate }),
    ]);
    expect(failed).toMatchObject({ ok: false, retryable: false });
    expect(await server.all('Patient')).toHaveLength(0);
  });
});

describe('per source', () => {
  it('applies each source its own linking mode', async () => {
    const sink = sinkWith({ mode: 'identifier' }, { patientLinkingBySource: { radiology2: { mode: 'conditional' } } });
    await sink.writeBatch([
      studyWrite('1.2.9.9.1', { patientId: 'J1' }),
      studyWrite('1.2.9.9.2', { patientId: 'J2', sourceId: 'radiology2' }),
    ]);
    expect((await storedStudy('1.2.9.9.1')).subject?.identifier?.value).toBe('J1');
    expect((await storedStudy('1.2.9.9.2')).subject?.reference).toBe(`Patient?identifier=${PATIENT_SYSTEM}|J2`);
  });
});
