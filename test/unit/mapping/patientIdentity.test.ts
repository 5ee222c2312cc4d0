/**
 * One home for patient identity and names: the per-issuer identifier systems, and the names shared by the
 * mapper (ImagingStudy.subject.display) and the FHIR sink (Patient.name), which must agree.
 */
import { sourceSchema } from '../../../src/config/schema';
import { mapStudy } from '../../../src/mapping';
import { humanName, personNameText } from '../../../src/mapping/names';
import { patientFacts, unmappedIssuerSystem } from '../../../src/mapping/patient';
import { Tag } from '../../../src/dicom/tags';
import { basicResults, pn, s } from './dicom';

const source = (patient: Record<string, unknown> = {}) =>
  sourceSchema.parse({ id: 'pacs1', qidoBase: 'http://pacs/dicom-web', mapping: { patient } });

describe('names', () => {
  test.each([
    [{ Alphabetic: '陳^大文' }, 'alphabetic', '陳大文'],
    [{ Alphabetic: '林^美玲' }, 'ideographic', '林美玲'],
    [{ Alphabetic: 'Chen^Da Wen', Ideographic: '陳^大文' }, 'alphabetic', 'Da Wen Chen'],
    [{ Alphabetic: 'Chen^Da Wen', Ideographic: '陳^大文' }, 'ideographic', '陳大文'],
    [{ Alphabetic: 'SMITH^JOHN^Q^DR^JR' }, 'alphabetic', 'DR JOHN Q SMITH JR'],
    [{ Alphabetic: '^^', Ideographic: '王^小明' }, 'alphabetic', '王小明'],
    [{ Phonetic: 'やまだ^たろう' }, 'alphabetic', 'やまだたろう'],
    [{ Alphabetic: '山田^太郎' }, 'alphabetic', '山田太郎'],
  ] as const)('%j (%s) → %s', (name, group, text) => {
    expect(personNameText(name, group)).toBe(text);
  });

  test('a HumanName keeps the components and reads like the display', () => {
    expect(humanName('陳^大文')).toEqual({ use: 'official', text: '陳大文', family: '陳', given: ['大文'] });
    expect(humanName('Smith^John^Q^Dr')).toEqual({
      use: 'official',
      text: 'Dr John Q Smith',
      family: 'Smith',
      given: ['John', 'Q'],
      prefix: ['Dr'],
    });
    expect(humanName('^^')).toBeUndefined();
  });

  test.each([
    { Alphabetic: 'Smith^John' },
    { Alphabetic: '陳^大文' },
    { Alphabetic: 'Chen^Da Wen', Ideographic: '陳^大文' },
    { Ideographic: '林^美玲' },
    { Alphabetic: 'O’Brien^Mary Ann^^Ms' },
  ])('Patient.name.text equals ImagingStudy.subject.display for %j', (name) => {
    for (const nameGroup of ['alphabetic', 'ideographic'] as const) {
      const r = basicResults();
      r.study[Tag.PatientName] = pn(name);
      const src = source({ nameGroup });
      const mapped = mapStudy(r, src);
      if (!mapped.ok) throw new Error(mapped.error.message);
      expect(patientFacts(r.study, src)?.name?.text).toBe(mapped.imagingStudy.subject?.display);
    }
  });
});

describe('issuer-safe patient identity', () => {
  test('an unmapped issuer gets a valid URI of its own per source and issuer', () => {
    const sys = unmappedIssuerSystem('pacs1', 'TW HOSP:A|1,$\\(x)');
    expect(sys).toBe('urn:pacs-fhir-bridge:pacs1:issuer:TW%20HOSP%3AA%7C1%2C%24%5C%28x%29:patient-id');
    // Only URN characters (RFC 8141: unreserved, percent-encoded, ":").
    expect(sys).toMatch(/^urn:[a-z0-9-]+:[A-Za-z0-9\-._~%:]+$/);
    expect(unmappedIssuerSystem('pacs2', 'TW HOSP:A|1,$\\(x)')).not.toBe(sys);
  });

  test('two issuers, one Patient ID: two identifiers; configured issuers keep their systems', () => {
    const study = (issuer?: string) => {
      const r = basicResults();
      r.study[Tag.PatientID] = s('LO', 'Q12345');
      if (issuer) r.study[Tag.IssuerOfPatientID] = s('LO', issuer);
      return r.study;
    };
    const src = source({ issuerSystems: { TWHOSP: 'urn:oid:2.16.886.101.20003.20014' } });
    const systems = ['TWHOSP', 'OTHERHOSP', 'THIRD', undefined].map((i) => patientFacts(study(i), src)?.identifier);
    expect(systems).toEqual([
      { system: 'urn:oid:2.16.886.101.20003.20014', value: 'Q12345' },
      { system: 'urn:pacs-fhir-bridge:pacs1:issuer:OTHERHOSP:patient-id', value: 'Q12345' },
      { system: 'urn:pacs-fhir-bridge:pacs1:issuer:THIRD:patient-id', value: 'Q12345' },
      { system: 'urn:pacs-fhir-bridge:pacs1:patient-id', value: 'Q12345' },
    ]);
  });

  test('no issuer: each source its own system, unless the sources configure one shared defaultSystem', () => {
    const r = basicResults();
    r.study[Tag.PatientID] = s('LO', '12345');
    const a = sourceSchema.parse({ id: 'hosp-a', qidoBase: 'http://a.test/dicom-web' });
    const b = sourceSchema.parse({ id: 'hosp-b', qidoBase: 'http://b.test/dicom-web' });
    expect(patientFacts(r.study, a)?.identifier).toEqual({
      system: 'urn:pacs-fhir-bridge:hosp-a:patient-id',
      value: '12345',
    });
    expect(patientFacts(r.study, b)?.identifier).toEqual({
      system: 'urn:pacs-fhir-bridge:hosp-b:patient-id',
      value: '12345',
    });
    const shared = { mapping: { patient: { defaultSystem: 'urn:oid:2.16.886.101.1' } } };
    const [sa, sb] = [a, b].map((src) => sourceSchema.parse({ ...src, ...shared }));
    expect(patientFacts(r.study, sa)?.identifier).toEqual(patientFacts(r.study, sb)?.identifier);
    expect(patientFacts(r.study, sa)?.identifier?.system).toBe('urn:oid:2.16.886.101.1');
  });
});
