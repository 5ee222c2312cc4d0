/** ImagingStudy.started: StudyDate + StudyTime + Timezone Offset From UTC, else the source's default zone. */
import { mapStudy } from '../../../src/mapping';
import { offsetForLocalTime } from '../../../src/mapping/datetime';
import { Tag } from '../../../src/dicom/tags';
import { basicResults, s, source } from './dicom';
import { expectValid } from './validity';

function started(date: string | undefined, time: string | undefined, extra: Record<string, unknown> = {}, tz?: string) {
  const r = basicResults();
  if (date === undefined) delete r.study[Tag.StudyDate];
  else r.study[Tag.StudyDate] = s('DA', date);
  if (time === undefined) delete r.study[Tag.StudyTime];
  else r.study[Tag.StudyTime] = s('TM', time);
  Object.assign(r.study, extra);
  const res = expectValid(mapStudy(r, source(tz ? { defaultTimezone: tz } : {})));
  return { value: res.imagingStudy.started, codes: res.warnings.map((w) => w.code) };
}

test.each([
  ['20240315', '093015', '2024-03-15T09:30:15+08:00'],
  ['20240315', '0930', '2024-03-15T09:30:00+08:00'],
  ['20240315', '09', '2024-03-15T09:00:00+08:00'],
  ['20240315', '093015.123456', '2024-03-15T09:30:15.123+08:00'],
  ['20240315', '093015.5', '2024-03-15T09:30:15.5+08:00'],
  ['20240315', '235959.999999', '2024-03-15T23:59:59.999+08:00'],
  ['20240315', '09:30:15', '2024-03-15T09:30:15+08:00'],
  ['2024.03.15', undefined, '2024-03-15'],
  ['20240315', undefined, '2024-03-15'],
])('%s %s → %s (default Asia/Taipei)', (date, time, expected) => {
  expect(started(date, time).value).toBe(expected);
});

test('Timezone Offset From UTC wins over the default zone', () => {
  expect(started('20170101', '110120', { [Tag.TimezoneOffsetFromUTC]: s('SH', '+0300') }).value).toBe(
    '2017-01-01T11:01:20+03:00',
  );
  expect(started('20170101', '110120', { [Tag.TimezoneOffsetFromUTC]: s('SH', '-0530') }).value).toBe(
    '2017-01-01T11:01:20-05:30',
  );
});

test('a malformed offset is reported and the default zone used', () => {
  const r = started('20240315', '093015', { [Tag.TimezoneOffsetFromUTC]: s('SH', '+8') });
  expect(r.value).toBe('2024-03-15T09:30:15+08:00');
  expect(r.codes).toContain('bad-timezone');
});

test('an IANA default zone follows daylight saving time at the local date-time', () => {
  expect(started('20240115', '120000', {}, 'America/New_York').value).toBe('2024-01-15T12:00:00-05:00');
  expect(started('20240715', '120000', {}, 'America/New_York').value).toBe('2024-07-15T12:00:00-04:00');
  // Taiwan kept summer time in 1979.
  expect(started('19790715', '120000', {}, 'Asia/Taipei').value).toBe('1979-07-15T12:00:00+09:00');
});

test('a fixed default offset', () => {
  expect(started('20240315', '093015', {}, '-0300').value).toBe('2024-03-15T09:30:15-03:00');
});

test('bad date: started is left out with a warning; time without date likewise', () => {
  const bad = started('20241345', '093015');
  expect(bad.value).toBeUndefined();
  expect(bad.codes).toContain('bad-date');
  const timeOnly = started(undefined, '093015');
  expect(timeOnly.value).toBeUndefined();
  expect(timeOnly.codes).toContain('time-without-date');
  const yearZero = started('00000101', undefined);
  expect(yearZero.value).toBeUndefined();
});

test('a bad time keeps the date', () => {
  const r = started('20240315', '25');
  expect(r.value).toBe('2024-03-15');
  expect(r.codes).toContain('bad-time');
});

test('offsetForLocalTime resolves skipped and repeated local times deterministically', () => {
  const gap = offsetForLocalTime('America/New_York', { year: 2024, month: 3, day: 10 }, { hour: 2, minute: 30 });
  expect([-300, -240]).toContain(gap);
  const overlap = offsetForLocalTime('America/New_York', { year: 2024, month: 11, day: 3 }, { hour: 1, minute: 30 });
  expect([-300, -240]).toContain(overlap);
  expect(offsetForLocalTime('America/New_York', { year: 2024, month: 11, day: 3 }, { hour: 1, minute: 30 })).toBe(
    overlap,
  );
});
