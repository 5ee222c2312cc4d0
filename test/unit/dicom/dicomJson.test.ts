import fc from 'fast-check';
import {
  DicomReader,
  formatDa,
  parseDateTime,
  rawValues,
  readCodes,
  readDate,
  readDateTime,
  readInteger,
  readNumber,
  readNumbers,
  readOffset,
  readPersonName,
  readPersonNames,
  readSequence,
  readString,
  readStrings,
  readTime,
  type AttrResult,
} from '../../../src/dicom/dicomJson';

const T = '00100020';
const ds = (attr: unknown) => ({ [T]: attr }) as never;
const value = (v: unknown[], vr = 'LO') => ds({ vr, Value: v });

function problemKind(r: AttrResult<unknown>): string | undefined {
  return r.kind === 'problem' ? r.problem.kind : undefined;
}

describe('missing versus empty', () => {
  it('an absent attribute is missing', () => {
    expect(readString({}, T)).toEqual({ kind: 'missing' });
  });
  it('an attribute without Value, with null Value or with [] is empty', () => {
    expect(readString(ds({ vr: 'LO' }), T)).toEqual({ kind: 'empty' });
    expect(readString(ds({ vr: 'LO', Value: null }), T)).toEqual({ kind: 'empty' });
    expect(readString(value([]), T)).toEqual({ kind: 'empty' });
  });
  it('null and "" inside Value are empty positions, skipped', () => {
    expect(readString(value([null]), T)).toEqual({ kind: 'empty' });
    expect(readStrings(value([null, 'A', '', 'B']), T)).toEqual({ kind: 'value', value: ['A', 'B'] });
  });
  it('a lower-case tag key is found too', () => {
    expect(readString({ '0020000d': { vr: 'UI', Value: ['1.2'] } } as never, '0020000D')).toEqual({
      kind: 'value',
      value: '1.2',
    });
  });
});

describe('strings: single and multiple values', () => {
  it('first value and all values, trimmed of padding and NULs', () => {
    expect(readString(value([' ABC ', 'DEF']), T)).toEqual({ kind: 'value', value: 'ABC' });
    expect(readStrings(value(['CT', 'MR\0']), T)).toEqual({ kind: 'value', value: ['CT', 'MR'] });
  });
  it('a number where a string is expected keeps its text', () => {
    expect(readString(value([12]), T)).toEqual({ kind: 'value', value: '12' });
  });
  it.each([[{ a: 1 }], [[1]], [true]])('%j as a string value is a not-a-string problem', (bad) => {
    expect(problemKind(readString(value([bad]), T))).toBe('not-a-string');
  });
});

describe('problems, never throws, for malformed containers', () => {
  it.each([[null], ['text'], [[]], [42]])('dataset %j is not an object', (bad) => {
    const r = readString(bad, T);
    expect(problemKind(r)).toBe('not-an-object');
  });
  it.each([['str'], [5], [[1]]])('attribute %j is not an object', (attr) => {
    expect(problemKind(rawValues(ds(attr), T))).toBe('not-an-object');
  });
  it('Value that is not an array', () => {
    expect(problemKind(readString(ds({ vr: 'LO', Value: 'x' }), T))).toBe('bad-value-array');
  });
  it('the problem names the attribute', () => {
    const r = readDate({ '00080020': { vr: 'DA', Value: ['20231301'] } } as never, '00080020');
    expect(r.kind === 'problem' && r.problem.message).toContain('StudyDate (0008,0020)');
  });
});

describe('IS/DS: JSON number or string', () => {
  it.each([
    [[5], 5],
    [['5'], 5],
    [[' 12 '], 12],
    [['-3.25'], -3.25],
    [['1.5e3'], 1500],
    [['+7'], 7],
    [['.5'], 0.5],
  ])('%j → %d', (v, n) => {
    expect(readNumber(value(v, 'DS'), T)).toEqual({ kind: 'value', value: n });
  });
  it('multiple values', () => {
    expect(readNumbers(value(['1', 2, '3.5'], 'DS'), T)).toEqual({ kind: 'value', value: [1, 2, 3.5] });
  });
  it.each([['abc'], ['12a'], ['1,5'], [Infinity], [NaN], [{}], [true]])(
    'non-numeric %p is a not-a-number problem',
    (bad) => {
      expect(problemKind(readNumber(value([bad], 'IS'), T))).toBe('not-a-number');
    },
  );
  it('a whitespace-only string is empty', () => {
    expect(readNumber(value(['  '], 'IS'), T)).toEqual({ kind: 'empty' });
  });
  it('readInteger refuses fractions', () => {
    expect(problemKind(readInteger(value(['1.5'], 'IS'), T))).toBe('not-a-number');
    expect(readInteger(value(['42'], 'IS'), T)).toEqual({ kind: 'value', value: 42 });
  });
});

describe('DA', () => {
  const da = (v: unknown) => readDate(value([v], 'DA'), T);
  it('valid dates, including the ACR-NEMA dotted form and 29 Feb of a leap year', () => {
    expect(da('20231231')).toEqual({ kind: 'value', value: { year: 2023, month: 12, day: 31 } });
    expect(da('2023.01.02')).toEqual({ kind: 'value', value: { year: 2023, month: 1, day: 2 } });
    expect(da('20240229')).toEqual({ kind: 'value', value: { year: 2024, month: 2, day: 29 } });
  });
  it.each([
    ['20231301'],
    ['20230230'],
    ['20230229'],
    ['20230000'],
    ['2023010'],
    ['2023-01-02'],
    ['abcdefgh'],
    ['202301011'],
  ])('%s is a bad-date problem', (bad) => {
    const r = da(bad);
    expect(problemKind(r)).toBe('bad-date');
    expect(r.kind === 'problem' && r.problem.raw).toBe(bad);
  });
  it('formatDa pads', () => {
    expect(formatDa({ year: 987, month: 3, day: 4 })).toBe('09870304');
  });
});

describe('TM', () => {
  const tm = (v: unknown) => readTime(value([v], 'TM'), T);
  it('keeps how much was given, fractional seconds as text', () => {
    expect(tm('07')).toEqual({ kind: 'value', value: { hour: 7 } });
    expect(tm('0715')).toEqual({ kind: 'value', value: { hour: 7, minute: 15 } });
    expect(tm('071530.123456')).toEqual({
      kind: 'value',
      value: { hour: 7, minute: 15, second: 30, fraction: '123456' },
    });
    expect(tm('07:15:30')).toEqual({ kind: 'value', value: { hour: 7, minute: 15, second: 30 } });
    expect(tm('235960')).toEqual({ kind: 'value', value: { hour: 23, minute: 59, second: 60 } });
  });
  it.each([['25'], ['2360'], ['236161'], ['1'], ['101010.1234567'], ['10:1'], ['noon']])(
    '%s is a bad-time problem',
    (bad) => {
      expect(problemKind(tm(bad))).toBe('bad-time');
    },
  );
});

describe('DT and UTC offsets', () => {
  const dt = (v: string) => readDateTime(value([v], 'DT'), T);
  it('date-time with fractional seconds and offset', () => {
    expect(dt('20230102030405.5+0800')).toEqual({
      kind: 'value',
      value: {
        date: { year: 2023, month: 1, day: 2 },
        precision: 'time',
        time: { hour: 3, minute: 4, second: 5, fraction: '5' },
        offsetMinutes: 480,
      },
    });
  });
  it('year and month precision', () => {
    expect(parseDateTime('2023')).toEqual({ date: { year: 2023, month: 1, day: 1 }, precision: 'year' });
    expect(parseDateTime('202305')).toEqual({ date: { year: 2023, month: 5, day: 1 }, precision: 'month' });
    expect(parseDateTime('20230501-0530')).toMatchObject({ precision: 'day', offsetMinutes: -330 });
  });
  it.each([['20231301'], ['2023010125'], ['20230101+1500'], ['20230101+0860'], ['x']])(
    '%s is a bad-datetime problem',
    (bad) => {
      expect(problemKind(dt(bad))).toBe('bad-datetime');
    },
  );
  it('TimezoneOffsetFromUTC', () => {
    const off = (v: string) => readOffset({ '00080201': { vr: 'SH', Value: [v] } } as never, '00080201');
    expect(off('+0800')).toEqual({ kind: 'value', value: 480 });
    expect(off('-0530')).toEqual({ kind: 'value', value: -330 });
    expect(problemKind(off('0800'))).toBe('bad-timezone');
    expect(problemKind(off('+08:00'))).toBe('bad-timezone');
    expect(problemKind(off('+1600'))).toBe('bad-timezone');
  });
});

describe('PN', () => {
  const pn = (v: unknown[]) => ds({ vr: 'PN', Value: v });
  it('all three component groups, Chinese ideographic intact', () => {
    expect(
      readPersonName(pn([{ Alphabetic: 'Wang^XiaoMing', Ideographic: '王^小明', Phonetic: 'ワン^シャオミン' }]), T),
    ).toEqual({
      kind: 'value',
      value: { Alphabetic: 'Wang^XiaoMing', Ideographic: '王^小明', Phonetic: 'ワン^シャオミン' },
    });
  });
  it('only an ideographic group', () => {
    expect(readPersonName(pn([{ Ideographic: '陳^大文' }]), T)).toEqual({
      kind: 'value',
      value: { Ideographic: '陳^大文' },
    });
  });
  it('multiple names', () => {
    const r = readPersonNames(pn([{ Alphabetic: 'A^B' }, { Alphabetic: 'C^D' }]), T);
    expect(r).toEqual({ kind: 'value', value: [{ Alphabetic: 'A^B' }, { Alphabetic: 'C^D' }] });
  });
  it('a bare string (non-conformant) is read as Alphabetic', () => {
    expect(readPersonName(pn(['Doe^John']), T)).toEqual({ kind: 'value', value: { Alphabetic: 'Doe^John' } });
  });
  it('an object with only empty groups is empty', () => {
    expect(readPersonName(pn([{ Alphabetic: '' }]), T)).toEqual({ kind: 'empty' });
  });
  it.each([[[42]], [[{ Alphabetic: 42 }]], [[['A']]]])('%j is a bad-person-name problem', (v) => {
    expect(problemKind(readPersonName(pn(v), T))).toBe('bad-person-name');
  });
});

describe('sequences and code sequences', () => {
  const SQ = '00081032';
  const code = (c: Record<string, unknown[]>) =>
    Object.fromEntries(Object.entries(c).map(([tag, v]) => [tag, { vr: 'SH', Value: v }]));
  it('items are datasets; code items become coded entries', () => {
    const d = {
      [SQ]: {
        vr: 'SQ',
        Value: [
          code({ '00080100': ['RPID1'], '00080102': ['RADLEX'], '00080104': ['CT HEAD'], '00080103': ['4.0'] }),
          code({ '00080119': ['LONGCODE'], '00080102': ['X'] }),
          code({ '00080120': ['urn:x'], '00080104': ['Meaning only via URN'] }),
        ],
      },
    } as never;
    expect(readSequence(d, SQ)).toMatchObject({ kind: 'value', value: { length: 3 } });
    expect(readCodes(d, SQ)).toEqual({
      kind: 'value',
      value: [
        { code: 'RPID1', scheme: 'RADLEX', schemeVersion: '4.0', meaning: 'CT HEAD' },
        { code: 'LONGCODE', scheme: 'X' },
        { code: 'urn:x', meaning: 'Meaning only via URN' },
      ],
    });
  });
  it('an empty sequence and a sequence of empty items are empty', () => {
    expect(readCodes({ [SQ]: { vr: 'SQ', Value: [] } } as never, SQ)).toEqual({ kind: 'empty' });
    expect(readCodes({ [SQ]: { vr: 'SQ', Value: [{}] } } as never, SQ)).toEqual({ kind: 'empty' });
    expect(readCodes({ [SQ]: { vr: 'SQ' } } as never, SQ)).toEqual({ kind: 'empty' });
  });
  it('a non-object item is a bad-sequence problem', () => {
    expect(problemKind(readCodes({ [SQ]: { vr: 'SQ', Value: ['x'] } } as never, SQ))).toBe('bad-sequence');
  });
});

describe('DicomReader', () => {
  it('collects one problem per bad attribute and returns plain values', () => {
    const r = new DicomReader({
      '00080020': { vr: 'DA', Value: ['20231301'] },
      '00080030': { vr: 'TM', Value: ['25'] },
      '00201206': { vr: 'IS', Value: ['many'] },
      '00081030': { vr: 'LO', Value: ['Chest'] },
    });
    expect(r.date('00080020')).toBeUndefined();
    expect(r.time('00080030')).toBeUndefined();
    expect(r.integer('00201206')).toBeUndefined();
    expect(r.string('00081030')).toBe('Chest');
    expect(r.problems.map((p) => p.kind)).toEqual(['bad-date', 'bad-time', 'not-a-number']);
    expect(r.has('00081030')).toBe(true);
    expect(r.has('00100010')).toBe(false);
  });

  it('no reader throws on any JSON at all', () => {
    const readers = [
      readString,
      readStrings,
      readNumber,
      readInteger,
      readDate,
      readTime,
      readDateTime,
      readOffset,
      readPersonName,
      readSequence,
      readCodes,
    ];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue(),
          fc.record({ [T]: fc.jsonValue() }),
          fc.record({ [T]: fc.record({ vr: fc.string(), Value: fc.jsonValue() }) }),
        ),
        (input) => {
          for (const read of readers) {
            const r = read(input, T);
            expect(['missing', 'empty', 'value', 'problem']).toContain(r.kind);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
