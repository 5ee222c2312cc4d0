/**
 * Hand-built mapped studies for the FHIR sink tests (the shape the mapper produces: an
 * ImagingStudy-twcore with a DICOM UID identifier, a logical patient reference and the source's
 * WADO-RS Endpoint).
 */
import type { Endpoint, ImagingStudy } from 'fhir/r4';
import type { PatientFacts, StudyWrite } from '../../../../src/sinks/sink';

export const PATIENT_SYSTEM = 'urn:pacs-fhir-bridge:patient-id';

export function endpointFor(sourceId: string, address = `http://pacs.example/${sourceId}/dicom-web`): Endpoint {
  return {
    resourceType: 'Endpoint',
    id: `pacs-${sourceId}`,
    status: 'active',
    connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'dicom-wado-rs' },
    payloadType: [
      { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/endpoint-payload-type', code: 'DICOM' }] },
    ],
    payloadMimeType: ['application/dicom'],
    address,
  };
}

export interface StudyOptions {
  sourceId?: string;
  patientId?: string;
  description?: string;
  /** Facts for StudyWrite.patient; `false` for none. */
  patient?: Partial<Omit<PatientFacts, 'identifier'>> | false;
  /** Break the resource so the server rejects it. */
  invalid?: boolean;
}

export function studyWrite(uid: string, opts: StudyOptions = {}): StudyWrite {
  const sourceId = opts.sourceId ?? 'pacs1';
  const patientId = opts.patientId ?? `P-${uid.split('.').pop()}`;
  const imagingStudy: ImagingStudy = {
    resourceType: 'ImagingStudy',
    id: uid,
    meta: { profile: ['https://twcore.mohw.gov.tw/ig/twcore/StructureDefinition/ImagingStudy-twcore'] },
    identifier: [{ use: 'official', system: 'urn:dicom:uid', value: `urn:oid:${uid}` }],
    status: 'available',
    subject: { type: 'Patient', identifier: { system: PATIENT_SYSTEM, value: patientId }, display: 'Test^Patient' },
    started: '2024-03-01T10:00:00+08:00',
    description: opts.description ?? 'CT CHEST',
    endpoint: [{ reference: `Endpoint/pacs-${sourceId}` }],
    numberOfSeries: 1,
    numberOfInstances: 1,
    series: [
      {
        uid: `${uid}.1`,
        modality: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT' },
        numberOfInstances: 1,
        instance: [
          { uid: `${uid}.1.1`, sopClass: { system: 'urn:ietf:rfc:3986', code: 'urn:oid:1.2.840.10008.5.1.4.1.1.2' } },
        ],
      },
    ],
  };
  if (opts.invalid) (imagingStudy as unknown as Record<string, unknown>).started = 'not-a-date';
  const patient: PatientFacts | undefined =
    opts.patient === false
      ? undefined
      : { identifier: { system: PATIENT_SYSTEM, value: patientId }, ...(opts.patient ?? {}) };
  return {
    sourceId,
    studyUid: uid,
    imagingStudy,
    endpoint: endpointFor(sourceId),
    contentHash: `hash-${uid}-${opts.description ?? ''}`,
    patient,
  };
}

export const uids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}.${i + 1}`);
