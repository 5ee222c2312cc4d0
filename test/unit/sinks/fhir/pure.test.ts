/** Pure parts of the FHIR sink: retry timing, capability check, Bundle building, patient linking, facts. */
import fc from 'fast-check';
import { sourceSchema } from '../../../../src/config';
import type { CapabilityStatement } from 'fhir/r4';
import {
  buildTransaction,
  entryCount,
  prepareStudy,
  versionFromEtag,
  writtenIdentity,
} from '../../../../src/sinks/fhir/bundle';
import { capabilityProblems } from '../../../../src/sinks/fhir/capability';
import { fhirSinkSchema, patientLinkingSchema } from '../../../../src/sinks/fhir/config';
import { operationOutcomeText } from '../../../../src/sinks/fhir/outcome';
import { tokenParam } from '../../../../src/sinks/fhir/query';
import { planPatientLink } from '../../../../src/sinks/fhir/patientLink';
import { humanName, patientFacts as patientFactsFromDicom } from '../../../../src/mapping';
import { jitteredBackoff as backoffDelay, parseRetryAfter } from '../../../../src/http/backoff';
import { isRetryableStatus } from '../../../../src/sinks/fhir/retry';
import { studyWrite } from '../../../integration/sinks/fhir/studies';

const TAG = { system: 'urn:pacs-fhir-bridge', code: 'synced' };
const linking = (over: Record<string, unknown> = {}) => patientLinkingSchema.parse(over);

describe('retry timing', () => {
  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2024-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('Mon, 01 Jan 2024 00:00:10 GMT', now)).toBe(10000);
    expect(parseRetryAfter('Sun, 31 Dec 2023 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('backoff stays within [ceiling/2, ceiling] and the ceiling doubles up to the maximum', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 30 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, r) => {
          const ceiling = Math.min(8000, 100 * 2 ** attempt);
          const d = backoffDelay(attempt, 100, 8000, () => r);
          return d >= Math.floor(ceiling / 2) && d <= ceiling;
        },
      ),
    );
  });

  it('retries 408, 429 and 5xx only', () => {
    expect([400, 401, 404, 409, 412, 422].some(isRetryableStatus)).toBe(false);
    expect([408, 429, 500, 502, 503, 504].every(isRetryableStatus)).toBe(true);
  });
});

describe('capability check', () => {
  const cs = (over: Partial<CapabilityStatement> = {}): CapabilityStatement => ({
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2024-01-01',
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [{ mode: 'server', interaction: [{ code: 'transaction' }] }],
    ...over,
  });

  it('accepts FHIR 4.0.x with transactions', () => {
    expect(capabilityProblems(cs(), 'conditional').problems).toEqual([]);
    expect(capabilityProblems(cs({ fhirVersion: '4.0.0' }), 'conditional').problems).toEqual([]);
  });

  it('names each problem', () => {
    expect(
      capabilityProblems(cs({ fhirVersion: '4.3.0' as CapabilityStatement['fhirVersion'] }), 'conditional').problems,
    ).toEqual(['server speaks FHIR 4.3.0, this bridge needs FHIR R4 (4.0.x)']);
    expect(capabilityProblems(cs({ rest: [{ mode: 'server' }] }), 'conditional').problems[0]).toMatch(/transaction/);
    expect(capabilityProblems({ resourceType: 'Bundle' }, 'conditional').problems[0]).toMatch(
      /did not return a CapabilityStatement/,
    );
    const noConditional = cs({
      rest: [
        {
          mode: 'server',
          interaction: [{ code: 'transaction' }],
          resource: [{ type: 'ImagingStudy', conditionalUpdate: false }],
        },
      ],
    });
    expect(capabilityProblems(noConditional, 'conditional').problems[0]).toMatch(/client-id/);
    expect(capabilityProblems(noConditional, 'client-id').problems).toEqual([]);
  });
});

describe('transaction Bundle', () => {
  const plan = { kind: 'reference' as const, subject: { reference: 'Patient/1' }, note: { mode: 'lookup' as const } };

  it('conditional mode: PUT by DICOM identifier, no id, owner tag, server Endpoint, If-Match when known', () => {
    const s = prepareStudy(studyWrite('1.2.3'), {
      writeMode: 'conditional',
      endpointRef: 'Endpoint/abc',
      ownerTag: TAG,
      plan,
      knownVersion: '7',
    });
    expect(s.url).toBe('ImagingStudy?identifier=urn:dicom:uid|urn:oid:1.2.3');
    expect(s.ifMatch).toBe('W/"7"');
    expect(s.resource.id).toBeUndefined();
    expect(s.resource.endpoint).toEqual([{ reference: 'Endpoint/abc' }]);
    expect(s.resource.meta?.tag).toEqual([TAG]);
    expect(s.resource.meta?.profile).toHaveLength(1);
    expect(s.resource.subject).toEqual({ reference: 'Patient/1' });
  });

  it('client-id mode: PUT ImagingStudy/<id>', () => {
    const s = prepareStudy(studyWrite('1.2.3'), {
      writeMode: 'client-id',
      endpointRef: 'Endpoint/x',
      ownerTag: TAG,
      plan,
    });
    expect(s.url).toBe('ImagingStudy/1.2.3');
    expect(s.resource.id).toBe('1.2.3');
    expect(s.ifMatch).toBeUndefined();
  });

  it('adds the DICOM identifier when the mapper left it out', () => {
    const w = studyWrite('1.2.4');
    w.imagingStudy.identifier = [];
    const s = prepareStudy(w, { writeMode: 'conditional', endpointRef: 'Endpoint/x', ownerTag: TAG, plan });
    expect(s.resource.identifier).toEqual([{ use: 'official', system: 'urn:dicom:uid', value: 'urn:oid:1.2.4' }]);
  });

  it('creates each Patient once per Bundle, before the studies that reference it', () => {
    const create = (uid: string, pid: string) => {
      const w = studyWrite(uid, { patientId: pid, patient: { gender: 'male', birthDate: '2000-01-01' } });
      const p = planPatientLink(w, linking({ mode: 'create' }), TAG);
      if (p.kind === 'fail') throw new Error(p.reason);
      return prepareStudy(w, { writeMode: 'conditional', endpointRef: 'Endpoint/x', ownerTag: TAG, plan: p });
    };
    const studies = [create('1.1', 'A'), create('1.2', 'A'), create('1.3', 'B')];
    expect(entryCount(studies)).toBe(5);
    const { bundle, studyEntry } = buildTransaction(studies);
    expect(bundle.entry!.map((e) => `${e.request!.method} ${e.request!.url}`)).toEqual([
      'POST Patient',
      'POST Patient',
      'PUT ImagingStudy?identifier=urn:dicom:uid|urn:oid:1.1',
      'PUT ImagingStudy?identifier=urn:dicom:uid|urn:oid:1.2',
      'PUT ImagingStudy?identifier=urn:dicom:uid|urn:oid:1.3',
    ]);
    expect(bundle.entry![0].request!.ifNoneExist).toBe('identifier=urn:pacs-fhir-bridge:patient-id|A');
    expect(studyEntry).toEqual([2, 3, 4]);
    const ref = (i: number) =>
      (bundle.entry![i].resource as unknown as { subject: { reference: string } }).subject.reference;
    expect(ref(2)).toBe(bundle.entry![0].fullUrl);
    expect(ref(3)).toBe(bundle.entry![0].fullUrl);
    expect(ref(4)).toBe(bundle.entry![1].fullUrl);
  });

  it('reads id and version from the resource, the ETag or the Location', () => {
    expect(
      writtenIdentity(
        { resource: { resourceType: 'ImagingStudy', id: 'a', meta: { versionId: '2' } } as any },
        'ImagingStudy',
      ),
    ).toEqual({ id: 'a', versionId: '2' });
    expect(
      writtenIdentity({ response: { status: '200', location: 'ImagingStudy/b/_history/3' } }, 'ImagingStudy'),
    ).toEqual({ id: 'b', versionId: '3' });
    expect(
      writtenIdentity(
        { response: { status: '201', location: 'http://x/fhir/ImagingStudy/c', etag: 'W/"9"' } },
        'ImagingStudy',
      ),
    ).toEqual({ id: 'c', versionId: '9' });
    expect(writtenIdentity({ response: { status: '200' } }, 'ImagingStudy')).toBeUndefined();
    expect(versionFromEtag('"4"')).toBe('4');
  });
});

describe('patient linking plan', () => {
  it('lookup with one, none or several matches', () => {
    const w = studyWrite('1.9', { patientId: 'X' });
    const key = 'urn:pacs-fhir-bridge:patient-id|X';
    expect(planPatientLink(w, linking({ mode: 'lookup' }), TAG, new Map([[key, ['p1']]]))).toMatchObject({
      subject: { reference: 'Patient/p1' },
    });
    expect(planPatientLink(w, linking({ mode: 'lookup' }), TAG, new Map([[key, []]]))).toMatchObject({
      subject: { identifier: { value: 'X' } },
      note: { mode: 'identifier' },
    });
    expect(planPatientLink(w, linking({ mode: 'lookup' }), TAG, new Map([[key, ['p1', 'p2']]]))).toMatchObject({
      kind: 'fail',
      retryable: true,
    });
  });

  it('uses the mapped subject identifier when no facts are given, and keeps the mapped subject when there is no identifier', () => {
    const w = studyWrite('1.10', { patientId: 'Y', patient: false });
    expect(planPatientLink(w, linking({ mode: 'conditional' }), TAG)).toMatchObject({
      subject: { reference: 'Patient?identifier=urn:pacs-fhir-bridge:patient-id|Y' },
    });
    w.imagingStudy.subject = { display: 'anonymous' };
    expect(planPatientLink(w, linking({ mode: 'conditional' }), TAG)).toMatchObject({
      subject: { display: 'anonymous' },
      note: { mode: 'as-mapped' },
    });
  });

  it('escapes identifier values in conditional references', () => {
    const w = studyWrite('1.11', { patientId: 'A&B C' });
    expect(planPatientLink(w, linking({ mode: 'conditional' }), TAG)).toMatchObject({
      subject: { reference: 'Patient?identifier=urn:pacs-fhir-bridge:patient-id|A%26B%20C' },
    });
  });
});

describe('patient facts from DICOM', () => {
  const source = (patient: Record<string, unknown> = {}) =>
    sourceSchema.parse({
      id: 's',
      qidoBase: 'http://pacs/dicom-web',
      mapping: { patient: { defaultSystem: 'urn:x', ...patient } },
    });

  it('reads Patient ID with the issuer system, sex, birth date and name', () => {
    const ds = {
      '00100020': { vr: 'LO', Value: ['12345'] },
      '00100021': { vr: 'LO', Value: ['HOSP'] },
      '00100040': { vr: 'CS', Value: ['F'] },
      '00100030': { vr: 'DA', Value: ['19750203'] },
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Lin^Mei Hua', Ideographic: '林^美華' }] },
    };
    expect(patientFactsFromDicom(ds, source({ issuerSystems: { HOSP: 'urn:oid:1.2.3' } }))).toEqual({
      identifier: { system: 'urn:oid:1.2.3', value: '12345' },
      gender: 'female',
      birthDate: '1975-02-03',
      name: { use: 'official', text: 'Mei Hua Lin', family: 'Lin', given: ['Mei Hua'] },
    });
    expect(patientFactsFromDicom(ds, source({ nameGroup: 'ideographic' }))?.name).toEqual({
      use: 'official',
      text: '林美華',
      family: '林',
      given: ['美華'],
    });
    // An issuer the table does not map gets its own system, per source and issuer.
    expect(patientFactsFromDicom(ds, source())?.identifier).toEqual({
      system: 'urn:pacs-fhir-bridge:s:issuer:HOSP:patient-id',
      value: '12345',
    });
    expect(patientFactsFromDicom({}, source())).toBeUndefined();
  });

  it('leaves out what DICOM does not say', () => {
    const facts = patientFactsFromDicom(
      {
        '00100020': { vr: 'LO', Value: ['9'] },
        '00100040': { vr: 'CS', Value: ['U'] },
        '00100030': { vr: 'DA', Value: ['bad'] },
      },
      source(),
    );
    expect(facts).toEqual({ identifier: { system: 'urn:x', value: '9' } });
    expect(humanName('^^')).toBeUndefined();
  });
});

describe('config and outcome text', () => {
  it('defaults', () => {
    const c = fhirSinkSchema.parse({ baseUrl: 'http://fhir.example/R4' });
    expect(c).toMatchObject({
      auth: { type: 'none' },
      batchSize: 8,
      writeMode: 'conditional',
      patientLinking: { mode: 'identifier', onNone: 'identifier', onMultiple: 'fail' },
      retries: 4,
    });
    expect(() => fhirSinkSchema.parse({ baseUrl: 'nope', auth: { type: 'oauth2' } })).toThrow();
  });

  it('renders OperationOutcome issues', () => {
    expect(
      operationOutcomeText({
        resourceType: 'OperationOutcome',
        issue: [
          { severity: 'error', code: 'invalid', details: { text: 'Bad date' }, expression: ['ImagingStudy.started'] },
          { severity: 'warning', code: 'processing', diagnostics: 'hmm' },
        ],
      }),
    ).toBe('error: Bad date (ImagingStudy.started); warning: hmm');
  });
});

describe('search values', () => {
  it('escapes FHIR search separators and URL-encodes', () => {
    expect(tokenParam('urn:oid:1.2', 'a,b|c$d\\e')).toBe('urn:oid:1.2|a%5C%2Cb%5C%7Cc%5C%24d%5C%5Ce');
  });
});
