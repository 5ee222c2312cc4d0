import {
  exactParam,
  inexactReason,
  InexactValueError,
  matchesLocally,
  planMatch,
  resolveKey,
  wireValue,
} from '../../../src/dicomweb/queryEncoding';
import { restoreWireQuery } from '../../../src/dicomweb/transport';

describe('wire form of matching values', () => {
  it('UIDs, dates, ranges and UID lists travel unchanged', async () => {
    expect(
      planMatch({
        StudyInstanceUID: '1.2.840.10008.5.1,1.2.3',
        StudyDate: '20240101-20240131',
        StudyTime: '-120000.999999',
      }).params,
    ).toEqual([
      ['0020000D', '1.2.840.10008.5.1,1.2.3'],
      ['00080020', '20240101-20240131'],
      ['00080030', '-120000.999999'],
    ]);
  });
  it('`^` and spaces in names and IDs become single-character wildcards', async () => {
    expect(wireValue('Doe^Peter', true)).toEqual({ wire: 'Doe?Peter', widened: true });
    expect(wireValue('ID 1^x', true)).toEqual({ wire: 'ID?1?x', widened: true });
  });
  it('a run holding non-ASCII characters becomes one `*`', async () => {
    expect(wireValue('王^小明', true)).toEqual({ wire: '*', widened: true });
    expect(wireValue('病人1', true)).toEqual({ wire: '*1', widened: true });
    expect(wireValue('Chen 陳^A', true)).toEqual({ wire: 'Chen*A', widened: true });
  });
  it('safe values are not widened; caller wildcards are kept', async () => {
    expect(wireValue('ABC-12_3.4~', true)).toEqual({ wire: 'ABC-12_3.4~', widened: false });
    expect(wireValue('DOE*', true)).toEqual({ wire: 'DOE*', widened: false });
    expect(wireValue('CT,MR', true)).toEqual({ wire: 'CT,MR', widened: false });
  });
  it('non-wildcard attributes are percent-encoded instead (Empty Value Matching "")', async () => {
    expect(wireValue('""', false)).toEqual({ wire: '%22%22', widened: false });
  });
  it('only widened keys get a local filter; PN ones are marked', async () => {
    const p = planMatch({ PatientName: 'Doe^Peter', PatientID: 'A1', StudyDescription: 'HEAD CT' });
    expect(p.filters).toEqual([
      { tag: '00100010', value: 'Doe^Peter', personName: true },
      { tag: '00081030', value: 'HEAD CT', personName: false },
    ]);
  });
  it('in lookups, identifying values are never widened: refused where they cannot travel exactly', async () => {
    const lookup = { exactIdentifiers: true };
    for (const [key, value] of [
      ['PatientID', '陳'],
      ['PatientID', 'VICTI%99'],
      ['AccessionNumber', 'ACC 9'],
      ['StudyID', 'S^1'],
    ])
      expect(() => planMatch({ [key]: value }, lookup)).toThrow(InexactValueError);
    // A caller's own wildcard stays theirs; a sweep's filter (sync) may still be widened and narrowed.
    expect(planMatch({ AccessionNumber: 'ACC*' }, lookup).params).toEqual([['00080050', 'ACC*']]);
    expect(planMatch({ AccessionNumber: 'ACC 9' }).params).toEqual([['00080050', 'ACC?9']]);
  });
  it('on a percent-decoding PACS every value is percent-encoded, exactly', async () => {
    const o = { percentDecodes: true };
    expect(planMatch({ PatientID: '陳 1', AccessionNumber: 'VACC00%' }, o)).toEqual({
      params: [
        ['00100020', '%E9%99%B3%201'],
        ['00080050', 'VACC00%25'],
      ],
      filters: [],
    });
    expect(planMatch({ StudyDescription: 'HEAD^CT' }, o).params).toEqual([['00081030', 'HEAD%5ECT']]);
  });
  it('never a bare "*": a name that widens to nothing but wildcards is left off and checked locally', async () => {
    expect(planMatch({ PatientName: '王^小明' })).toEqual({
      params: [],
      filters: [{ tag: '00100010', value: '王^小明', personName: true }],
    });
    expect(planMatch({ StudyDescription: '頭部' })).toEqual({
      params: [],
      filters: [{ tag: '00081030', value: '頭部', personName: false }],
    });
  });
  it('inexactReason: wildcards, empty values and unsendable characters', async () => {
    expect(inexactReason('P00001')).toBeUndefined();
    expect(inexactReason('P*')).toMatch(/wildcard/);
    expect(inexactReason('')).toMatch(/every study/);
    expect(inexactReason('VICTI%99')).toMatch(/"%"/);
    expect(inexactReason('陳')).toMatch(/non-ASCII/);
    expect(inexactReason('陳', { percentDecodes: true })).toBeUndefined();
    expect(inexactReason('P?', { percentDecodes: true })).toMatch(/wildcard/);
  });
  it('a PN value without "=" goes out as a prefix (Orthanc matches the whole A=I=P string) and is checked locally', async () => {
    expect(planMatch({ PatientName: 'DOE' })).toEqual({
      params: [['00100010', 'DOE*']],
      filters: [{ tag: '00100010', value: 'DOE', personName: true }],
    });
    expect(planMatch({ PatientName: 'Doe^Peter' }).params).toEqual([['00100010', 'Doe?Peter*']]);
    expect(planMatch({ PatientName: 'DOE*' }).params).toEqual([['00100010', 'DOE*']]);
    expect(planMatch({ PatientName: 'Doe=陳' }).params).toEqual([['00100010', 'Doe*']]);
  });
  it('keywords and tags resolve; unknown keys pass through', async () => {
    expect(resolveKey('ModalitiesInStudy')).toBe('00080061');
    expect(resolveKey('0020000d')).toBe('0020000D');
    expect(resolveKey('fuzzymatching')).toBe('fuzzymatching');
  });
  it('the transport undoes exactly one encodeURIComponent (what dicomweb-client applies)', async () => {
    const wire = 'PatientName=Doe?Peter&00080020=%22%22&0020000D=1.2,1.3&PatientID=*1';
    const asSentByClient = wire
      .split('&')
      .map((kv) => {
        const [k, v] = kv.split('=');
        return `${k}=${encodeURIComponent(v)}`;
      })
      .join('&');
    expect(restoreWireQuery(`http://pacs/dicom-web/studies?${asSentByClient}`)).toBe(
      `http://pacs/dicom-web/studies?${wire}`,
    );
  });

  it('an exact matching key goes out as itself or throws, never as a wildcard', async () => {
    expect(exactParam('PatientID', 'P-001')).toEqual(['00100020', 'P-001']);
    expect(exactParam('PatientID', '陳 1', { percentDecodes: true })).toEqual(['00100020', '%E9%99%B3%201']);
    for (const bad of ['', '*', 'P?1', '陳', 'A B'])
      expect(() => exactParam('PatientID', bad)).toThrow(InexactValueError);
  });
});

describe('local narrowing of widened answers', () => {
  const pn = (groups: object) => ({ '00100010': { vr: 'PN', Value: [groups] } });
  const lo = (tag: string, v: string) => ({ [tag]: { vr: 'LO', Value: [v] } });
  // Filters as planMatch makes them for widened values (identifying keys are no longer widened, but a
  // PACS may still match them loosely, e.g. case-insensitively).
  const f = (match: Record<string, string>) =>
    Object.entries(match).map(([k, value]) => ({ tag: resolveKey(k), value, personName: k === 'PatientName' }));

  it('PN: matches any component group, case-insensitively, and the full A=I=P form', async () => {
    expect(matchesLocally(pn({ Alphabetic: 'DOE^PETER' }), f({ PatientName: 'Doe^Peter' }))).toBe(true);
    expect(matchesLocally(pn({ Alphabetic: 'Doe^Petra' }), f({ PatientName: 'Doe^Peter' }))).toBe(false);
    expect(
      matchesLocally(pn({ Alphabetic: 'Wang^XiaoMing', Ideographic: '王^小明' }), f({ PatientName: '王^小明' })),
    ).toBe(true);
    expect(
      matchesLocally(pn({ Alphabetic: '王^小明', Ideographic: '王^小明' }), f({ PatientName: '王^小明=王^小明' })),
    ).toBe(true);
    expect(matchesLocally(pn({ Ideographic: '王^小華' }), f({ PatientName: '王^小明' }))).toBe(false);
  });
  it('PN: trailing empty components do not matter', async () => {
    expect(matchesLocally(pn({ Alphabetic: 'Doe^Peter^^' }), f({ PatientName: 'Doe^Peter' }))).toBe(true);
  });
  it('LO/SH: exact, case-sensitive, caller wildcards honoured', async () => {
    expect(matchesLocally(lo('00100020', 'ID 1^x'), f({ PatientID: 'ID 1^x' }))).toBe(true);
    expect(matchesLocally(lo('00100020', 'ID 1^y'), f({ PatientID: 'ID 1^x' }))).toBe(false);
    expect(matchesLocally(lo('00100020', 'id 1^x'), f({ PatientID: 'ID 1^x' }))).toBe(false);
    expect(matchesLocally(lo('00100020', '病人12'), f({ PatientID: '病人1*' }))).toBe(true);
    expect(matchesLocally(lo('00100020', '病人1'), f({ PatientID: '病人1' }))).toBe(true);
    expect(matchesLocally(lo('00100020', '1'), f({ PatientID: '病人1' }))).toBe(false);
  });
  it('a value list matches any of its values', async () => {
    expect(matchesLocally(lo('00080050', 'B 2'), f({ AccessionNumber: 'A 1,B 2' }))).toBe(true);
  });
  it('an attribute the server left out keeps the study; an empty one does not match', async () => {
    expect(matchesLocally({}, f({ PatientID: 'ID 1' }))).toBe(true);
    expect(matchesLocally({ '00100020': { vr: 'LO' } }, f({ PatientID: 'ID 1' }))).toBe(false);
  });
  it('regex metacharacters in values are literal', async () => {
    expect(matchesLocally(lo('00100020', 'A(1)+'), f({ PatientID: 'A(1)+' }))).toBe(true);
    expect(matchesLocally(lo('00100020', 'A11'), f({ PatientID: 'A(1)+' }))).toBe(false);
  });
});
