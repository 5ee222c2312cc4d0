/**
 * _lastUpdated (every prefix, and the store push-down admitting at least what the matcher admits), _sort
 * (keys, order, keyset positions, paging over a changing result), _elements (R4 tables, SUBSETTED) and
 * strict handling by default.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, ImagingStudy, StructureDefinition } from 'fhir/r4';
import type { Cursor } from '../../../../src/api/fhir/cursor';
import { ELEMENTS, subsetElements, SUBSETTED } from '../../../../src/api/fhir/elements';
import { lastUpdatedMatches, parseLastUpdated, type LastUpdatedValue } from '../../../../src/api/fhir/lastUpdated';
import { FhirError } from '../../../../src/api/fhir/outcome';
import { parseImagingStudySearch, wantsStrict, type ParseOptions } from '../../../../src/api/fhir/params';
import { comparePositions, decodeSortCursor, encodeSortCursor, type SortKey } from '../../../../src/api/fhir/sort';
import { sortedSearch } from '../../../../src/api/fhir/sortedSearch';
import { storeFilterFor } from '../../../../src/api/fhir/storeFilter';
import type { FoundStudy, SearchRequest, StudyLookup, StudyPage } from '../../../../src/api/fhir/studies';

const opts: ParseOptions = { defaultCount: 20, maxCount: 50, maxValueLength: 128, strict: true, mode: 'store' };
const parse = (q: string, o: Partial<ParseOptions> = {}) =>
  parseImagingStudySearch([...new URLSearchParams(q).entries()], { ...opts, ...o });

function refusal(q: string, o: Partial<ParseOptions> = {}): FhirError {
  try {
    parse(q, o);
  } catch (e) {
    expect(e).toBeInstanceOf(FhirError);
    expect((e as FhirError).status).toBe(400);
    return e as FhirError;
  }
  throw new Error(`"${q}" was accepted`);
}

const value = (raw: string): LastUpdatedValue => {
  const v = parseLastUpdated(raw, Date.parse('2024-03-01T10:00:00Z'));
  if (typeof v === 'string') throw new Error(v);
  return v;
};

describe('_lastUpdated', () => {
  const at = '2024-03-01T10:00:00.000Z';
  it.each([
    // [value, matches a resource updated at 2024-03-01T10:00:00.000Z]
    ['2024-03-01', true],
    ['eq2024-03-01', true],
    ['eq2024-03-02', false],
    ['ne2024-03-01', false],
    ['ne2024-03-02', true],
    ['gt2024-02-29', true],
    ['gt2024-03-01', false], // the value covers the whole day
    ['gt2024-03-01T09:59:59Z', true],
    ['gt2024-03-01T10:00:00Z', false], // that second covers 10:00:00.000
    ['ge2024-03-01T10:00:00Z', true],
    ['lt2024-03-01T10:00:00Z', false],
    ['lt2024-03-01T10:00:01Z', true],
    ['le2024-03-01T10:00:00Z', true],
    ['le2024-03-01T09:59:59.999Z', false],
    ['sa2024-02-29', true],
    ['sa2024-03-01', false],
    ['eb2024-03-02', true],
    ['eb2024-03-01', false],
    ['eq2024-03-01T18:00:00+08:00', true], // offsets read; 10:00Z
    ['eq2024-03-01T10:00', true], // no offset: UTC, the store's zone, minute precision
    ['eq2024-03', true],
    ['gt2023', true],
    ['lt2024', false],
  ])('%s → %s', (raw, expected) => {
    expect(lastUpdatedMatches(at, value(raw))).toBe(expected);
  });

  it('ap widens the value by a tenth of its distance from now', () => {
    // 2024-03-11 is 10 days before "now" (2024-03-21): ±1 day (plus the day it covers).
    const now = Date.parse('2024-03-21T00:00:00Z');
    const ap = parseLastUpdated('ap2024-03-11', now) as LastUpdatedValue;
    expect(lastUpdatedMatches('2024-03-10T00:00:00.000Z', ap)).toBe(true);
    expect(lastUpdatedMatches('2024-03-09T23:00:00.000Z', ap)).toBe(false);
    expect(lastUpdatedMatches('2024-03-12T12:00:00.000Z', ap)).toBe(true);
    expect(lastUpdatedMatches('2024-03-13T02:00:00.000Z', ap)).toBe(false);
  });

  it('a resource without meta.lastUpdated matches no value', () => {
    expect(lastUpdatedMatches(undefined, value('ne2024-01-01'))).toBe(false);
  });

  it('the store filter admits every instant the matcher admits', () => {
    const raws = ['eq2024-03-01', 'gt2024-03-01T10:00:00Z', 'lt2024-03-01', 'ge2024-02', 'le2024-03-01T10:00Z'];
    const instants = ['2024-02-01', '2024-02-29T23:59:59.999', '2024-03-01', '2024-03-01T10:00:00', '2024-03-02'].map(
      (t) => new Date(`${t}${t.length > 10 ? 'Z' : 'T00:00:00Z'}`).toISOString(),
    );
    for (const prefix of ['', 'ne', 'sa', 'eb', 'ap']) raws.push(`${prefix}2024-03-01`);
    let admitted = 0;
    for (const raw of raws) {
      const f = storeFilterFor([{ param: '_lastUpdated', kind: 'lastUpdated', value: value(raw) }], 'a', 'UTC')!;
      for (const t of instants) {
        if (!lastUpdatedMatches(t, value(raw))) continue;
        admitted++;
        for (const b of f.lastUpdated ?? []) {
          if (b.from !== undefined) expect([raw, t, t >= b.from]).toEqual([raw, t, true]);
          if (b.to !== undefined) expect([raw, t, t < b.to]).toEqual([raw, t, true]);
        }
      }
    }
    expect(admitted).toBeGreaterThan(10);
  });

  it('is refused in live mode, saying why, and with a malformed value', () => {
    const live = refusal('_lastUpdated=gt2024-01-01', { mode: 'live' });
    expect(live.code).toBe('not-supported');
    expect(live.message).toMatch(/PACS keeps no last-updated time/);
    expect(refusal('_lastUpdated=gt2024-13-01').message).toMatch(/_lastUpdated/);
    expect(refusal('_lastUpdated=xx2024').message).toMatch(/_lastUpdated/);
    expect(parse('_lastUpdated=sa2024-01-01').criteria[0]).toMatchObject({
      kind: 'lastUpdated',
      param: '_lastUpdated',
    });
  });
});

describe('_sort', () => {
  it('reads keys in order, with "-" for descending, and carries them in the self link', () => {
    const p = parse('_id=1.2&_sort=-started,_lastUpdated');
    expect(p.sort).toEqual([
      { field: 'started', descending: true },
      { field: '_lastUpdated', descending: false },
    ]);
    expect(p.used).toEqual([
      ['_id', '1.2'],
      ['_sort', '-started,_lastUpdated'],
    ]);
  });

  it('refuses unknown, repeated and (live) _lastUpdated keys', () => {
    expect(refusal('_id=1.2&_sort=colour').message).toMatch(/"colour" is not a sort key/);
    expect(refusal('_id=1.2&_sort=started,-started').message).toMatch(/twice/);
    expect(refusal('_id=1.2&_sort=started&_sort=started').message).toMatch(/twice/);
    expect(refusal('_id=1.2&_sort=-_lastUpdated', { mode: 'live' }).code).toBe('not-supported');
    expect(parse('_id=1.2&_sort=-started', { mode: 'live' }).sort).toEqual([{ field: 'started', descending: true }]);
  });

  it('orders by each key, missing values last either way, then by id', () => {
    const keys: SortKey[] = [{ field: 'started', descending: true }];
    const pos = (v: number | null, id: string) => ({ values: [v], id, n: 0 });
    const sorted = [pos(1, 'b'), pos(null, 'a'), pos(3, 'c'), pos(1, 'a')].sort((a, b) => comparePositions(a, b, keys));
    expect(sorted.map((p) => `${p.values[0]}:${p.id}`)).toEqual(['3:c', '1:a', '1:b', 'null:a']);
    const asc = [pos(null, 'a'), pos(2, 'b'), pos(1, 'c')].sort((a, b) =>
      comparePositions(a, b, [{ field: 'started', descending: false }]),
    );
    expect(asc.map((p) => p.id)).toEqual(['c', 'b', 'a']);
  });

  it('positions round-trip through links and are refused for another key count', () => {
    const keys: SortKey[] = [
      { field: 'started', descending: false },
      { field: '_lastUpdated', descending: true },
    ];
    const p = { values: [-86_400_000, null], id: '1.2.840.5', n: 1 };
    const raw = encodeSortCursor(p);
    expect(parse(`_id=1.2&_sort=started,-_lastUpdated&_cursor=${raw}`).cursor).toBe(raw);
    expect(decodeSortCursor(raw, keys)).toEqual(p);
    expect(() => decodeSortCursor(raw, keys.slice(0, 1))).toThrow(FhirError);
    expect(() => decodeSortCursor('0.5', keys)).toThrow(FhirError);
  });
});

/** A lookup over a list that can change between pages, paged by offset as the real ones are. */
function fakeLookup(studies: () => FoundStudy[]): StudyLookup {
  return {
    sourceCount: 1,
    search: async (req: SearchRequest): Promise<StudyPage> => {
      const all = studies();
      const slice = all.slice(req.cursor.offset, req.cursor.offset + req.count);
      const end = req.cursor.offset + slice.length;
      const next: Cursor | undefined = end < all.length ? { source: 0, offset: end, lengths: [] } : undefined;
      return { studies: slice, problems: [], ...(next ? { next } : {}) };
    },
    zoneOf: () => 'Asia/Taipei',
  } as unknown as StudyLookup;
}

const study = (id: string, started?: string, lastUpdated?: string): FoundStudy => ({
  sourceId: 'a',
  resource: { resourceType: 'ImagingStudy', id, status: 'available', subject: {}, ...(started ? { started } : {}) },
  ...(lastUpdated ? { lastUpdated } : {}),
});

describe('sorted paging', () => {
  const keys: SortKey[] = [{ field: 'started', descending: true }];
  const days = ['2024-01-03', '2024-01-01', '2024-01-05', '2024-01-02', '2024-01-04', undefined, '2024-01-06'];

  async function pages(lookup: StudyLookup, count: number, between?: (page: number) => void) {
    const ids: string[][] = [];
    let after;
    for (let i = 0; i < 20; i++) {
      const p = await sortedSearch(lookup, { criteria: [], count, sort: keys, after }, { batch: 3, cap: 100 });
      ids.push(p.studies.map((s) => s.resource.id!));
      between?.(i);
      if (!p.next) break;
      after = decodeSortCursor(encodeSortCursor(p.next), keys);
    }
    return ids;
  }

  it('pages through the sort order: no study twice, none missed, date-only and offset-less times in the zone', async () => {
    const list = days.map((d, i) => study(`1.${i}`, d && `${d}T09:00:00`));
    list.push(study('1.9', '2024-01-04')); // a date alone: the start of that local day
    const got = await pages(
      fakeLookup(() => list),
      3,
    );
    expect(got).toEqual([
      ['1.6', '1.2', '1.4'],
      ['1.9', '1.0', '1.3'],
      ['1.1', '1.5'],
    ]);
  });

  it('a study added before the position between pages is neither repeated nor shifts others out', async () => {
    const list = days.map((d, i) => study(`1.${i}`, d && `${d}T09:00:00`));
    const got = await pages(
      fakeLookup(() => list),
      2,
      (page) => {
        if (page === 0) list.push(study('1.7', '2024-01-09T09:00:00')); // sorts first, already passed
      },
    );
    expect(got.flat()).toEqual(['1.6', '1.2', '1.4', '1.0', '1.3', '1.1', '1.5']);
  });

  it('orders by _lastUpdated with started as the second key; previous goes back', async () => {
    const list = [
      study('2.1', '2024-01-01', '2024-05-01T00:00:00.000Z'),
      study('2.2', '2024-01-03', '2024-05-02T00:00:00.000Z'),
      study('2.3', '2024-01-02', '2024-05-01T00:00:00.000Z'),
    ];
    const sort: SortKey[] = [
      { field: '_lastUpdated', descending: false },
      { field: 'started', descending: true },
    ];
    const lookup = fakeLookup(() => list);
    const first = await sortedSearch(lookup, { criteria: [], count: 2, sort }, { batch: 10, cap: 10 });
    expect(first.studies.map((s) => s.resource.id)).toEqual(['2.3', '2.1']);
    expect(first.total).toBe(3);
    expect(first.previous).toBeUndefined();
    const second = await sortedSearch(
      lookup,
      { criteria: [], count: 2, sort, after: first.next },
      { batch: 10, cap: 10 },
    );
    expect(second.studies.map((s) => s.resource.id)).toEqual(['2.2']);
    expect(second.next).toBeUndefined();
    expect(second.previous).toEqual({});
  });

  it('is refused beyond the cap', async () => {
    const list = days.map((d, i) => study(`1.${i}`, d));
    await expect(
      sortedSearch(
        fakeLookup(() => list),
        { criteria: [], count: 2, sort: keys },
        { batch: 2, cap: 5 },
      ),
    ).rejects.toMatchObject({ status: 400, code: 'too-costly' });
  });
});

describe('_elements', () => {
  it('the element tables are R4 ImagingStudy and Endpoint (top-level elements, min 1 for mandatory)', () => {
    const file = path.join(__dirname, '../../../../profiles/r4-core.json');
    const bundle = JSON.parse(fs.readFileSync(file, 'utf8')) as Bundle<StructureDefinition>;
    for (const type of ['ImagingStudy', 'Endpoint'] as const) {
      const sd = bundle.entry!.map((e) => e.resource!).find((r) => r.id === type)!;
      const top = sd.snapshot!.element.filter((e) => /^[A-Za-z]+\.[A-Za-z]+$/.test(e.path));
      expect([...ELEMENTS[type].all].sort()).toEqual(top.map((e) => e.path.split('.')[1]).sort());
      expect([...ELEMENTS[type].mandatory].sort()).toEqual(
        top
          .filter((e) => (e.min ?? 0) >= 1)
          .map((e) => e.path.split('.')[1])
          .sort(),
      );
    }
  });

  it('keeps the listed, mandatory and identifying elements and tags the match SUBSETTED', () => {
    const full: ImagingStudy = {
      resourceType: 'ImagingStudy',
      id: '1.2',
      meta: { profile: ['p'], tag: [SUBSETTED] },
      identifier: [{ value: 'A' }],
      status: 'available',
      subject: { reference: 'Patient/1' },
      started: '2024-01-01',
      series: [],
    };
    const out = subsetElements(full, ['started']);
    expect(Object.keys(out).sort()).toEqual(['id', 'meta', 'resourceType', 'started', 'status', 'subject']);
    expect(out.meta).toEqual({ profile: ['p'], tag: [SUBSETTED] });
    expect(full.series).toEqual([]); // the original is left as it was
    expect(parse('_id=1.2&_elements=started,identifier').used).toContainEqual(['_elements', 'started,identifier']);
    expect(refusal('_id=1.2&_elements=colour').message).toMatch(/colour/);
  });
});

describe('handling', () => {
  it('refuses unknown parameters by default and names them; lenient handling ignores them', () => {
    expect(wantsStrict(undefined)).toBe(true);
    expect(refusal('started=ge2000-01-01&foo=bar').message).toMatch(/"foo"/);
    expect(refusal('patinet=Patient/pid-1').message).toMatch(/"patinet"/);
    const lenient = parse('started=ge2000-01-01&foo=bar&_pretty=true', { strict: false });
    expect(lenient.ignored).toEqual(['foo']);
    expect(lenient.pretty).toBe(true);
    expect(lenient.used).toEqual([['started', 'ge2000-01-01']]);
    expect(refusal('_id=1.2&_pretty=yes').message).toMatch(/_pretty/);
  });
});
