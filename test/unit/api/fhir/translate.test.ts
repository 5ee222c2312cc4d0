import type { ImagingStudy } from 'fhir/r4';
import { scopeAllows } from '../../../../src/api/auth';
import { decodeCursor, encodeCursor, previousCursor } from '../../../../src/api/fhir/cursor';
import {
  parseDateValue,
  qidoDateRange,
  startedMatches,
  zoneOffsetMinutes,
  type DateValue,
} from '../../../../src/api/fhir/dates';
import { matchesAll } from '../../../../src/api/fhir/match';
import { parseImagingStudySearch } from '../../../../src/api/fhir/params';
import { qidoPlanFor } from '../../../../src/api/fhir/qido';

const dv = (s: string) => parseDateValue(s) as DateValue;
const criteria = (q: string) =>
  parseImagingStudySearch([...new URLSearchParams(q).entries()], {
    defaultCount: 20,
    maxCount: 50,
    maxValueLength: 128,
    strict: false,
    patientIdRule: { prefix: '', suffix: '' },
  }).criteria;
const source = { defaultTimezone: 'Asia/Taipei', mapping: { studyIdSystem: 'urn:study-id' } } as never;

describe('started → StudyDate', () => {
  it('turns date prefixes into inclusive StudyDate ranges', () => {
    expect(qidoDateRange([dv('2023-01-05')], 'Asia/Taipei')).toEqual({ StudyDate: '20230105' });
    expect(qidoDateRange([dv('ge2023-01-05')], 'Asia/Taipei')).toEqual({ StudyDate: '20230105-' });
    expect(qidoDateRange([dv('gt2023-01-05')], 'Asia/Taipei')).toEqual({ StudyDate: '20230106-' });
    expect(qidoDateRange([dv('le2023-01-05')], 'Asia/Taipei')).toEqual({ StudyDate: '-20230105' });
    expect(qidoDateRange([dv('lt2023-01-05')], 'Asia/Taipei')).toEqual({ StudyDate: '-20230104' });
    expect(qidoDateRange([dv('2023-02')], 'Asia/Taipei')).toEqual({ StudyDate: '20230201-20230228' });
    expect(qidoDateRange([dv('ge2023-01-01'), dv('lt2023-02-01')], 'Asia/Taipei')).toEqual({
      StudyDate: '20230101-20230131',
    });
  });

  it('refuses contradictory ranges without a query', () => {
    expect(qidoDateRange([dv('ge2023-02-01'), dv('lt2023-01-01')], 'Asia/Taipei')).toBeNull();
  });

  it('turns date-times into every local day the instant falls on from -14:00 to +14:00, leaving StudyTime open', () => {
    // 10:00–12:00 in Taipei is 02:00–04:00Z: local days 2023-01-04 (at -14:00) through 2023-01-05 (at +14:00).
    expect(
      qidoDateRange([dv('ge2023-01-05T10:00:00+08:00'), dv('lt2023-01-05T12:00:00+08:00')], 'Asia/Taipei'),
    ).toEqual({ StudyDate: '20230104-20230105' });
    expect(qidoDateRange([dv('eq2023-01-05T02:00Z')], 'Asia/Taipei')).toEqual({ StudyDate: '20230104-20230105' });
    expect(qidoDateRange([dv('ge2023-01-05T23:00:00+08:00')], 'Asia/Taipei')).toEqual({ StudyDate: '20230105-' });
    // Without an offset the value is read in the source zone: 10:00 at +01:00 is 09:00Z.
    expect(qidoDateRange([dv('ge2023-01-05T10:00')], '+0100')).toEqual({ StudyDate: '20230104-' });
    expect(qidoDateRange([dv('le2023-01-05T22:00Z')], 'Asia/Taipei')).toEqual({ StudyDate: '-20230106' });
  });

  it('finds a study whose own offset puts it on another local day than the source zone would', () => {
    // Started 2023-01-04T20:00-05:00 = 2023-01-05T01:00Z = 09:00 on the 5th in Taipei; its StudyDate is the 4th.
    const search = [dv('ge2023-01-05T09:00:00+08:00'), dv('lt2023-01-05T10:00:00+08:00')];
    const range = qidoDateRange(search, 'Asia/Taipei')!;
    const [from, to] = range.StudyDate!.split('-');
    expect('20230104' >= from && '20230104' <= to).toBe(true);
    expect(search.every((v) => startedMatches('2023-01-04T20:00:00-05:00', v, 'Asia/Taipei'))).toBe(true);
  });

  it('knows zone offsets, including daylight saving', () => {
    expect(zoneOffsetMinutes('Asia/Taipei', Date.UTC(2023, 0, 1))).toBe(480);
    expect(zoneOffsetMinutes('-0330', 0)).toBe(-210);
    expect(zoneOffsetMinutes('Europe/Berlin', Date.UTC(2023, 6, 1))).toBe(120);
  });

  it('matches started values by local date or by instant', () => {
    expect(startedMatches('2023-01-05T10:15:00+08:00', dv('2023-01-05'), 'UTC')).toBe(true);
    expect(startedMatches('2023-01-05', dv('gt2023-01-04'), 'UTC')).toBe(true);
    expect(startedMatches('2023-01-05', dv('lt2023-01-05'), 'UTC')).toBe(false);
    expect(startedMatches('2023-01-05T10:15:00+08:00', dv('ge2023-01-05T02:15:00Z'), 'UTC')).toBe(true);
    expect(startedMatches('2023-01-05T10:15:00+08:00', dv('gt2023-01-05T02:15:00Z'), 'UTC')).toBe(false);
    expect(startedMatches('2023-01-05T10:15:00+08:00', dv('eq2023-01-05T10:15+08:00'), 'UTC')).toBe(true);
    expect(startedMatches('2023-01-05', dv('ge2023-01-05T00:00Z'), 'UTC')).toBe(false);
  });
});

describe('criteria → QIDO match', () => {
  it('translates each parameter', () => {
    expect(qidoPlanFor(criteria('_id=1.2.3'), source)).toEqual({
      match: { StudyInstanceUID: '1.2.3' },
      uidList: false,
    });
    expect(qidoPlanFor(criteria('_id=1.2.3,1.2.4'), source)).toEqual({
      match: { StudyInstanceUID: '1.2.3,1.2.4' },
      uidList: true,
    });
    expect(qidoPlanFor(criteria('identifier=A1'), source)!.match).toEqual({ AccessionNumber: 'A1' });
    expect(qidoPlanFor(criteria('identifier=urn:study-id|77'), source)!.match).toEqual({ StudyID: '77' });
    expect(qidoPlanFor(criteria('patient=P1'), source)!.match).toEqual({ PatientID: 'P1' });
    expect(qidoPlanFor(criteria('patient:identifier=urn:x|P1'), source)!.match).toEqual({ PatientID: 'P1' });
    // Modality is filtered on the study-level rows, never sent (Orthanc 1.10 loses pages past offset 0).
    expect(qidoPlanFor(criteria('identifier=A1&modality=CT&status=available'), source)!.match).toEqual({
      AccessionNumber: 'A1',
    });
  });

  it('identifying values go out exactly or the search is refused, naming the parameter', () => {
    const refused = (q: string, src: object = source) => {
      try {
        qidoPlanFor(criteria(q), src as never);
      } catch (e) {
        return e as { status: number; message: string; expression?: string };
      }
      throw new Error(`${q} was not refused`);
    };
    const e = refused('patient:identifier=陳');
    expect(e.status).toBe(400);
    expect(e.message).toMatch(/"patient:identifier".*non-ASCII/);
    expect(refused('patient:identifier=VICTI%2599').message).toMatch(/"patient:identifier".*"%"/);
    expect(refused('identifier=VACC00%25').message).toMatch(/"identifier".*"%"/);
    const decoding = { ...(source as object), percentDecodesQueryValues: true };
    expect(qidoPlanFor(criteria('patient:identifier=陳'), decoding as never)!.match).toEqual({ PatientID: '陳' });
    expect(qidoPlanFor(criteria('identifier=VACC00%25'), decoding as never)!.match).toEqual({
      AccessionNumber: 'VACC00%',
    });
  });

  it('sends nothing when no study can match', () => {
    expect(qidoPlanFor(criteria('_id=1.2.3&_id=1.2.4'), source)).toBeNull();
    expect(qidoPlanFor(criteria('identifier=A1&identifier=A2'), source)).toBeNull();
    expect(qidoPlanFor(criteria('identifier=A1&modality=http://loinc.org|CT'), source)).toBeNull();
    expect(qidoPlanFor(criteria('identifier=A1&status=cancelled'), source)).toBeNull();
    expect(qidoPlanFor(criteria('patient=P1&patient.identifier=P2'), source)).toBeNull();
  });
});

describe('result filter', () => {
  const study: ImagingStudy = {
    resourceType: 'ImagingStudy',
    id: '1.2.3',
    status: 'available',
    identifier: [
      { system: 'urn:dicom:uid', value: 'urn:oid:1.2.3' },
      { system: 'http://ris', value: 'ACC1', type: { coding: [{ code: 'ACSN' }] } },
    ],
    subject: { identifier: { system: 'urn:pid', value: 'P1' } },
    started: '2023-01-05T10:15:00+08:00',
    modality: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT' }],
    series: [{ uid: '1.2.3.4', modality: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'SR' } }],
  };
  const m = (q: string) => matchesAll(study, criteria(q), { zone: 'Asia/Taipei', patientSystem: 'urn:pid' });

  it('matches by FHIR token semantics, case-sensitively', () => {
    expect(m('identifier=ACC1')).toBe(true);
    expect(m('identifier=acc1')).toBe(false);
    expect(m('identifier=http://ris|ACC1')).toBe(true);
    expect(m('identifier=http://other|ACC1')).toBe(false);
    expect(m('identifier=|ACC1')).toBe(false);
    expect(m('patient:identifier=urn:pid|P1')).toBe(true);
    expect(m('patient:identifier=urn:other|P1')).toBe(false);
    expect(m('patient=P1')).toBe(true);
    // A Patient id means the Patient ID in one system (the rule's, else the source's issuer-less one).
    expect(matchesAll(study, criteria('patient=P1'), { zone: 'UTC', patientSystem: 'urn:other' })).toBe(false);
    expect(m('modality=SR')).toBe(true); // series modality counts
    expect(m('modality=MR')).toBe(false);
    expect(m('series=1.2.3.4')).toBe(true);
    expect(m('series=1.2.3.5')).toBe(false);
    expect(m('status=registered,available')).toBe(true);
    expect(m('_id=1.2.3')).toBe(true);
    expect(m('_id=1.2.4')).toBe(false);
    expect(m('_id=1.2.4,1.2.3')).toBe(true);
    expect(m('series=1.2.3.5,1.2.3.4')).toBe(true);
    expect(m('started=ge2023-01-05&started=lt2023-01-06')).toBe(true);
  });

  it('reads patient identifiers from conditional references', () => {
    const conditional = { ...study, subject: { reference: 'Patient?identifier=urn:pid|P1' } };
    expect(
      matchesAll(conditional, criteria('patient.identifier=urn:pid|P1'), { zone: 'UTC', patientSystem: 'urn:x' }),
    ).toBe(true);
  });
});

describe('paging cursor', () => {
  it('round-trips and refuses positions it never gave out', () => {
    const c = { source: 2, offset: 7, lengths: [3, 10] };
    expect(decodeCursor(encodeCursor(c), 3)).toEqual(c);
    expect(() => decodeCursor('2.7.3', 3)).toThrow();
    expect(() => decodeCursor('5.0.1.1.1.1.1', 3)).toThrow();
  });

  it('steps back across source boundaries', () => {
    expect(previousCursor({ source: 0, offset: 0, lengths: [] }, 10)).toBeUndefined();
    expect(previousCursor({ source: 0, offset: 25, lengths: [] }, 10)).toEqual({ source: 0, offset: 15, lengths: [] });
    expect(previousCursor({ source: 1, offset: 4, lengths: [8] }, 10)).toEqual({ source: 0, offset: 2, lengths: [] });
    expect(previousCursor({ source: 2, offset: 0, lengths: [3, 12] }, 10)).toEqual({
      source: 1,
      offset: 2,
      lengths: [3],
    });
  });
});

describe('SMART scopes', () => {
  it.each([
    [['system/ImagingStudy.read'], 'ImagingStudy', 'search', true],
    [['user/*.read'], 'ImagingStudy', 'read', true],
    [['system/ImagingStudy.*'], 'ImagingStudy', 'read', true],
    [['system/ImagingStudy.rs'], 'ImagingStudy', 'search', true],
    [['system/ImagingStudy.r'], 'ImagingStudy', 'search', false],
    [['system/Endpoint.read'], 'ImagingStudy', 'read', false],
    [['patient/ImagingStudy.read'], 'ImagingStudy', 'read', false],
    [['system/ImagingStudy.write'], 'ImagingStudy', 'read', false],
    [['system/ImagingStudy.rs?patient=1'], 'ImagingStudy', 'read', false],
    [[], 'ImagingStudy', 'read', false],
  ] as const)('%j for %s %s → %s', (scopes, type, interaction, allowed) => {
    expect(scopeAllows([...scopes], type, interaction)).toBe(allowed);
  });
});
