/** Ids, Endpoint, content hash and study fingerprint. */
import fc from 'fast-check';
import {
  canonicalJson,
  contentHash,
  endpointFor,
  endpointId,
  imagingStudyId,
  patientIdentifier,
  studyFingerprint,
  validateEndpoint,
} from '../../../src/mapping';
import { Tag } from '../../../src/dicom/tags';
import { n, s, source, study } from './dicom';

describe('imagingStudyId', () => {
  test('a UID is its own id', () => expect(imagingStudyId('1.2.840.113619.2.55.3')).toBe('1.2.840.113619.2.55.3'));
  test('anything else gets a stable hashed id that is a valid FHIR id', () => {
    const long = `1.${'2'.repeat(80)}`;
    expect(imagingStudyId(long)).toBe(imagingStudyId(long));
    expect(imagingStudyId(long)).toMatch(/^uid-[0-9a-f]{40}$/);
    expect(imagingStudyId('1.2 3')).not.toBe(imagingStudyId('1.2_3'));
  });
});

describe('Endpoint', () => {
  test('one per source, stable id, WADO-RS connection, public base address', () => {
    const ep = endpointFor(
      source({
        id: 'main-pacs',
        qidoBase: 'http://10.0.0.5:8042/dicom-web',
        publicWadoBase: 'https://pacs.hosp.tw/dicom-web/',
      }),
    );
    expect(ep).toEqual({
      resourceType: 'Endpoint',
      id: 'pacs-main-pacs',
      status: 'active',
      connectionType: {
        system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type',
        code: 'dicom-wado-rs',
        display: 'DICOM WADO-RS',
      },
      name: 'PACS main-pacs DICOM WADO-RS endpoint',
      payloadType: [{ text: 'DICOM WADO-RS' }],
      payloadMimeType: ['application/dicom'],
      address: 'https://pacs.hosp.tw/dicom-web',
    });
    expect(validateEndpoint(ep)).toEqual([]);
    expect(endpointFor(source()).address).toBe('http://pacs.test/dicom-web');
    expect(endpointFor(source({ qidoBase: 'http://pacs:8042/dicom-web/' })).address).toBe('http://pacs:8042/dicom-web');
  });

  test('rendered media types the source configures are listed beside application/dicom, and validate', () => {
    const ep = endpointFor(source({ renderedMimeTypes: ['image/jpeg', 'application/dicom', 'image/png'] }));
    expect(ep.payloadMimeType).toEqual(['application/dicom', 'image/jpeg', 'image/png']);
    expect(validateEndpoint(ep)).toEqual([]);
    expect(() => source({ renderedMimeTypes: ['jpeg'] })).toThrow(/media type/);
  });

  test('endpointId stays a FHIR id for the longest source ids', () => {
    const id = 'a'.repeat(64);
    expect(endpointId(id)).toMatch(/^[A-Za-z0-9\-.]{1,64}$/);
    expect(endpointId(id)).toBe(endpointId(id));
    expect(endpointId('x')).toBe('pacs-x');
  });
});

describe('contentHash', () => {
  test('key order does not matter; content and server meta do as expected', () => {
    const a = { resourceType: 'Endpoint', id: 'x', status: 'active' };
    const b = { status: 'active', id: 'x', resourceType: 'Endpoint' };
    expect(contentHash(a)).toBe(contentHash(b));
    expect(contentHash({ ...a, meta: { versionId: '3', lastUpdated: '2024-01-01T00:00:00Z' } })).toBe(contentHash(a));
    expect(contentHash({ ...a, status: 'off' })).not.toBe(contentHash(a));
  });

  test('canonical JSON is JSON.stringify of the value with keys sorted at every level (hashes stay as before)', () => {
    const sorted = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(sorted)
        : v && typeof v === 'object'
          ? Object.fromEntries(
              Object.keys(v)
                .sort()
                .map((k) => [k, sorted((v as Record<string, unknown>)[k])]),
            )
          : v;
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(canonicalJson(value)).toBe(JSON.stringify(sorted(value)));
        expect(JSON.parse(canonicalJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 300 },
    );
    // As JSON.stringify: undefined members are left out of objects and become null in arrays.
    expect(canonicalJson({ b: undefined, a: [undefined, 1], c: { y: 'é', x: -0.5 } })).toBe(
      '{"a":[null,1],"c":{"x":-0.5,"y":"é"}}',
    );
  });
});

describe('studyFingerprint', () => {
  test('ignores modality order and attributes the mapper does not use; changes with counts and mapped attributes', () => {
    const base = study({ [Tag.ModalitiesInStudy]: s('CS', 'CT', 'PT') });
    const fp = studyFingerprint(base);
    expect(studyFingerprint({ ...base, [Tag.ModalitiesInStudy]: s('CS', 'PT', 'CT') })).toBe(fp);
    expect(studyFingerprint({ ...base, [Tag.RetrieveURL]: s('UR', 'http://x/studies/1') })).toBe(fp);
    expect(studyFingerprint({ ...base, [Tag.NumberOfStudyRelatedInstances]: n('IS', 3) })).not.toBe(fp);
    expect(studyFingerprint({ ...base, [Tag.StudyDescription]: s('LO', 'new') })).not.toBe(fp);
    expect(studyFingerprint({ ...base, [Tag.PatientID]: s('LO', 'other') })).not.toBe(fp);
  });
});

describe('patientIdentifier', () => {
  test('system from the issuer table, else the default; undefined without Patient ID', () => {
    const src = source({ mapping: { patient: { issuerSystems: { TPE: 'urn:tpe' } } } });
    expect(patientIdentifier(study({ [Tag.IssuerOfPatientID]: s('LO', 'TPE') }), src)).toEqual({
      system: 'urn:tpe',
      value: 'A123456789',
    });
    expect(patientIdentifier(study(), src)).toEqual({
      system: 'urn:pacs-fhir-bridge:pacs1:patient-id',
      value: 'A123456789',
    });
    expect(patientIdentifier(study({ [Tag.PatientID]: { vr: 'LO' } }), src)).toBeUndefined();
  });
});
