import { FhirError } from '../../../../src/api/fhir/outcome';
import {
  isRestricted,
  parseEndpointSearch,
  parseImagingStudySearch,
  parseStudyId,
  wantsStrict,
  type ParseOptions,
} from '../../../../src/api/fhir/params';

const opts: ParseOptions = {
  defaultCount: 20,
  maxCount: 50,
  maxValueLength: 128,
  strict: false,
  patientIdRule: { prefix: 'pid-', suffix: '' },
};
const parse = (q: string, o: Partial<ParseOptions> = {}) =>
  parseImagingStudySearch([...new URLSearchParams(q).entries()], { ...opts, ...o });

function rejects(q: string, o: Partial<ParseOptions> = {}): FhirError {
  try {
    parse(q, o);
  } catch (e) {
    expect(e).toBeInstanceOf(FhirError);
    expect((e as FhirError).status).toBe(400);
    return e as FhirError;
  }
  throw new Error(`"${q}" was accepted`);
}

describe('ImagingStudy search parameters', () => {
  it('reads Study Instance UID identifiers with and without the urn:dicom:uid system', () => {
    expect(parse('identifier=urn:dicom:uid|urn:oid:1.2.3').criteria).toEqual([
      { param: 'identifier', kind: 'studyUid', uids: ['1.2.3'] },
    ]);
    expect(parse('identifier=urn:oid:1.2.3').criteria).toEqual([
      { param: 'identifier', kind: 'studyUid', uids: ['1.2.3'] },
    ]);
  });

  it('reads accession numbers with, without and with an empty system', () => {
    expect(parse('identifier=http://ris|ACC1').criteria[0]).toEqual({
      param: 'identifier',
      kind: 'identifier',
      token: { system: 'http://ris', value: 'ACC1' },
    });
    expect(parse('identifier=ACC1').criteria[0]).toEqual({
      param: 'identifier',
      kind: 'identifier',
      token: { value: 'ACC1' },
    });
    expect(parse('identifier=|ACC1').criteria[0]).toEqual({
      param: 'identifier',
      kind: 'identifier',
      token: { system: '', value: 'ACC1' },
    });
  });

  it('reads patient by id (through the rule), by :identifier and by .identifier', () => {
    expect(parse('patient=Patient/pid-P1').criteria[0]).toMatchObject({
      kind: 'patientId',
      patientId: 'P1',
      reference: 'Patient/pid-P1',
    });
    expect(parse('subject=pid-P1').criteria[0]).toMatchObject({ kind: 'patientId', patientId: 'P1' });
    expect(parse('patient:identifier=urn:sys|P1').criteria[0]).toEqual({
      param: 'patient:identifier',
      kind: 'patientIdentifier',
      token: { system: 'urn:sys', value: 'P1' },
    });
    expect(parse('patient.identifier=P1').criteria[0]).toEqual({
      param: 'patient.identifier',
      kind: 'patientIdentifier',
      token: { value: 'P1' },
    });
  });

  it('refuses Patient ids without a configured rule, ids outside the rule and other resource types', () => {
    expect(rejects('patient=Patient/P1', { patientIdRule: undefined }).code).toBe('not-supported');
    rejects('patient=Patient/other-P1');
    rejects('subject=Group/1');
  });

  it('keeps _count within the maximum and carries the effective value outside `used`', () => {
    expect(parse('_id=1.2&_count=500').count).toBe(50);
    expect(parse('_id=1.2').count).toBe(20);
    expect(parse('_id=1.2&_count=5').used).toEqual([['_id', '1.2']]);
  });

  it('ignores unknown parameters, or refuses them when strict', () => {
    const p = parse('_id=1.2&_revinclude=date&foo=bar');
    expect(p.ignored).toEqual(['_revinclude', 'foo']);
    expect(p.used).toEqual([['_id', '1.2']]);
    expect(rejects('_id=1.2&foo=bar', { strict: true }).message).toMatch(/foo/);
  });

  it.each([
    ['a wildcard *', 'identifier=ACC*'],
    ['a wildcard ?', 'patient:identifier=P%3F1'],
    ['an empty value', 'identifier='],
    ['an empty list item', '_id=1.2,'],
    ['a line break', 'identifier=ACC%0A1'],
    ['a carriage return', 'patient.identifier=P%0D1'],
    ['a backslash', 'identifier=A%5CB'],
    ['an overlong value', `identifier=${'A'.repeat(200)}`],
    ['an accession longer than DICOM allows', `identifier=${'A'.repeat(65)}`],
    ['non-UID characters in _id', '_id=1.2.abc'],
    ['non-UID characters in a study UID identifier', 'identifier=urn:dicom:uid|urn:oid:1.2.x'],
    ['a UID identifier without urn:oid:', 'identifier=urn:dicom:uid|1.2.3'],
    ['a UID longer than 64', `_id=${'1.'.repeat(40)}1`],
    ['non-UID characters in series', 'series=1.2;3'],
    ['a bad date', 'started=2023-13-01'],
    ['an unsupported date prefix', 'started=ne2023-01-01'],
    ['a lower-case modality', 'modality=ct'],
    ['an unknown status', 'status=done'],
    ['_include=*', '_include=*'],
    ['an unsupported _include', '_include=ImagingStudy:subject'],
    ['_count=0', '_count=0'],
    ['_count=abc', '_count=abc'],
    ['an unsupported modifier', 'identifier:missing=true'],
    ['an unsupported chain', 'patient.name=Chen'],
    ['a system without value', 'identifier=http://ris|'],
    ['a comma list where one value is allowed', 'identifier=A,B'],
    ['_summary=true', '_summary=true'],
    ['a forged cursor', '_cursor=abc'],
  ])('refuses %s', (_what, q) => {
    rejects(q);
  });

  it('reads dates with every supported prefix', () => {
    for (const p of ['eq', 'ge', 'gt', 'le', 'lt', '']) {
      const c = parse(`started=${p}2023-01-05`).criteria[0];
      expect(c).toMatchObject({
        kind: 'started',
        value: { prefix: p || 'eq', days: { first: '2023-01-05', last: '2023-01-05' } },
      });
    }
    expect(parse('started=ge2023-01-05T10:00:00%2B08:00').criteria[0]).toMatchObject({
      value: { time: { offsetMinutes: 480, stepMs: 1000 } },
    });
  });

  it('tells restricting parameters from filters', () => {
    expect(isRestricted(parse('modality=CT&status=available').criteria)).toBe(false);
    for (const q of ['_id=1.2', 'identifier=A', 'patient.identifier=P', 'started=2023', 'series=1.2'])
      expect(isRestricted(parse(q).criteria)).toBe(true);
  });

  it('handles strictly unless Prefer says handling=lenient, among other preferences', () => {
    expect(wantsStrict('return=minimal, handling=strict')).toBe(true);
    expect(wantsStrict('handling=lenient')).toBe(false);
    expect(wantsStrict('return=minimal; handling=lenient')).toBe(false);
    expect(wantsStrict(undefined)).toBe(true);
  });

  it('checks read ids and Endpoint search parameters', () => {
    expect(parseStudyId('1.2.840.1')).toBe('1.2.840.1');
    expect(() => parseStudyId('abc')).toThrow(FhirError);
    expect(() => parseStudyId('1'.repeat(65))).toThrow(FhirError);
    expect(parseEndpointSearch([['_id', 'pacs-a,pacs-b']], opts).ids).toEqual(['pacs-a', 'pacs-b']);
    expect(() => parseEndpointSearch([['_id', '*']], opts)).toThrow(FhirError);
    expect(() => parseEndpointSearch([['x', '1']], { ...opts, strict: true })).toThrow(FhirError);
  });
});
