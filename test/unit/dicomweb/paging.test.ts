import type { DicomDataset } from '../../../src/dicom/dicomJson';
import { dedupe, pageThrough, type CapMemory, type PageAnswer } from '../../../src/dicomweb/paging';
import { PacsError } from '../../../src/dicomweb/types';
import { dayNumber, fromDayNumber } from '../../../src/time';
import { MAX_UID_LIST_CHARS, scopeParams, splitScope, uidBatches, type Scope } from '../../../src/dicomweb/windows';

const study = (uid: string): DicomDataset => ({ '0020000D': { vr: 'UI', Value: [uid] } });
const uidOf = (ds: DicomDataset) => ds['0020000D']?.Value?.[0] as string | undefined;
const corpus = (n: number) => Array.from({ length: n }, (_, i) => study(`1.2.${i}`));

/** A server model: `all` results; optional cap on the whole search (Orthanc: cap+1 come back). */
function server(
  all: DicomDataset[],
  opts: { totalCap?: number; perResponseCap?: number; signal?: 'warning' | '413'; ignoresOffset?: boolean } = {},
) {
  const calls: Array<[number, number]> = [];
  const fetch = async (limit: number, offset: number): Promise<PageAnswer> => {
    calls.push([limit, offset]);
    const reachable = opts.totalCap !== undefined ? all.slice(0, opts.totalCap + 1) : all;
    const capped = opts.totalCap !== undefined && all.length > opts.totalCap;
    if (capped && opts.signal === '413') throw new PacsError('too many', 413, 'http', false);
    const start = opts.ignoresOffset ? 0 : offset;
    const n = Math.min(limit, opts.perResponseCap ?? Infinity);
    return { datasets: reachable.slice(start, start + n), truncated: capped && opts.signal === 'warning' };
  };
  return { fetch, calls };
}

describe('pageThrough', () => {
  it('pages with limit/offset until a short page', async () => {
    const s = server(corpus(25));
    const r = await pageThrough(s.fetch, 10, {}, uidOf);
    expect(r.truncated).toBe(false);
    expect(r.datasets.map(uidOf)).toEqual(corpus(25).map(uidOf));
    expect(s.calls).toEqual([
      [10, 0],
      [10, 10],
      [10, 20],
    ]);
  });
  it('an exact multiple of the page size ends on an empty page', async () => {
    const s = server(corpus(20));
    const r = await pageThrough(s.fetch, 10, {}, uidOf);
    expect(r).toMatchObject({ truncated: false });
    expect(r.datasets).toHaveLength(20);
    expect(s.calls).toHaveLength(3);
  });
  it('a configured server limit caps the page size, and reaching it means truncated (Orthanc LimitFindResults)', async () => {
    const s = server(corpus(12), { totalCap: 5 });
    const r = await pageThrough(s.fetch, 100, { serverLimit: 5 }, uidOf);
    expect(r.truncated).toBe(true);
    expect(s.calls).toEqual([
      [5, 0],
      [5, 5],
    ]);
  });
  it('fewer results than the server limit is complete', async () => {
    const s = server(corpus(4), { totalCap: 5 });
    const r = await pageThrough(s.fetch, 100, { serverLimit: 5 }, uidOf);
    expect(r).toMatchObject({ truncated: false });
    expect(r.datasets).toHaveLength(4);
  });
  it('Warning: 299 / 206 mean truncated, and the count seen becomes the observed cap', async () => {
    const caps: CapMemory = {};
    const r = await pageThrough(server(corpus(30), { totalCap: 7, signal: 'warning' }).fetch, 100, caps, uidOf);
    expect(r.truncated).toBe(true);
    expect(caps.observedCap).toBe(8);
    // Later, a silent answer of exactly that size is suspect.
    const later = await pageThrough(server(corpus(8)).fetch, 100, caps, uidOf);
    expect(later.truncated).toBe(true);
    const smaller = await pageThrough(server(corpus(6)).fetch, 100, caps, uidOf);
    expect(smaller.truncated).toBe(false);
  });
  it('413 means truncated', async () => {
    const r = await pageThrough(server(corpus(30), { totalCap: 7, signal: '413' }).fetch, 100, {}, uidOf);
    expect(r).toEqual({ datasets: [], truncated: true });
  });
  it('other errors propagate', async () => {
    const failing = async (): Promise<PageAnswer> => {
      throw new PacsError('boom', 500, 'http', false);
    };
    await expect(pageThrough(failing, 10, {}, uidOf)).rejects.toThrow('boom');
  });
  it('a server ignoring offset does not loop forever nor duplicate, and what it never shows is truncated', async () => {
    const s = server(corpus(30), { ignoresOffset: true });
    const r = await pageThrough(s.fetch, 10, {}, uidOf);
    expect(r.datasets).toHaveLength(10);
    expect(r.truncated).toBe(true);
    expect(s.calls).toHaveLength(2);
  });
  it('a server ignoring offset below the page size is complete (its one page was short)', async () => {
    const r = await pageThrough(server(corpus(7), { ignoresOffset: true }).fetch, 10, {}, uidOf);
    expect(r).toMatchObject({ truncated: false });
    expect(r.datasets).toHaveLength(7);
  });
  it('a server ignoring limit answers whole: complete unless it ended at the cap', async () => {
    const whole = async (): Promise<PageAnswer> => ({ datasets: corpus(25), truncated: false });
    expect(await pageThrough(whole, 10, {}, uidOf)).toMatchObject({ truncated: false });
    const capped = async (): Promise<PageAnswer> => ({ datasets: corpus(11), truncated: false });
    expect(await pageThrough(capped, 10, { serverLimit: 10 }, uidOf)).toMatchObject({ truncated: true });
  });
  it('pages past serverLimit when the server caps pages only (Azure): complete, and remembered', async () => {
    const s = server(corpus(102), { perResponseCap: 40 });
    const caps: CapMemory = { serverLimit: 40 };
    const r = await pageThrough(s.fetch, 1000, caps, uidOf);
    expect(r.truncated).toBe(false);
    expect(r.datasets.map(uidOf)).toEqual(corpus(102).map(uidOf));
    expect(s.calls).toEqual([
      [40, 0],
      [40, 40],
      [40, 80],
    ]);
    expect(caps.pagesPastLimit).toBe(true);
    // Once seen paging past the limit, a search ending exactly there is complete too.
    expect(await pageThrough(server(corpus(40)).fetch, 1000, caps, uidOf)).toMatchObject({ truncated: false });
  });
  it('a search ending at serverLimit or one past it is truncated (a cap on the whole search, offset included)', async () => {
    for (const pageSize of [40, 30, 7]) {
      const s = server(corpus(102), { totalCap: 40 });
      const r = await pageThrough(s.fetch, pageSize, { serverLimit: 40 }, uidOf);
      expect(r.truncated).toBe(true);
      expect(r.datasets).toHaveLength(41);
      // The next offset was asked for: a page that fills is never taken as the last.
      expect(s.calls).toHaveLength(Math.floor(41 / pageSize) + 1);
    }
    const exact = server(corpus(40), { totalCap: 40 });
    expect(await pageThrough(exact.fetch, 40, { serverLimit: 40 }, uidOf)).toMatchObject({ truncated: true });
    expect(await pageThrough(server(corpus(39)).fetch, 40, { serverLimit: 40 }, uidOf)).toMatchObject({
      truncated: false,
    });
  });
});

describe('dedupe', () => {
  it('keeps the first per key and every keyless dataset', () => {
    const out = dedupe([study('1'), study('2'), study('1'), {}, {}], uidOf);
    expect(out.map(uidOf)).toEqual(['1', '2', undefined, undefined]);
  });
});

describe('window splitting', () => {
  it('date ranges halve into covering, disjoint ranges', () => {
    const parts = splitScope({ from: '20240101', to: '20240131' });
    expect(parts).toEqual([
      { from: '20240101', to: '20240116' },
      { from: '20240117', to: '20240131' },
    ]);
  });
  it('across month and leap-day boundaries', () => {
    expect(splitScope({ from: '20240228', to: '20240301' })).toEqual([
      { from: '20240228', to: '20240229' },
      { from: '20240301', to: '20240301' },
    ]);
    expect(fromDayNumber(dayNumber('20231231') + 1)).toBe('20240101');
  });
  it('one day splits into StudyTime halves plus the studies without a StudyTime', () => {
    expect(splitScope({ from: '20240105', to: '20240105' })).toEqual([
      { from: '20240105', to: '20240105', time: [0, 43199] },
      { from: '20240105', to: '20240105', time: [43200, 86399] },
      { from: '20240105', to: '20240105', emptyTime: true },
    ]);
  });
  it('time ranges halve down to one second, then stop', () => {
    expect(splitScope({ from: '20240105', to: '20240105', time: [10, 11] })).toHaveLength(2);
    expect(splitScope({ from: '20240105', to: '20240105', time: [10, 10] })).toEqual([]);
    expect(splitScope({ from: '20240105', to: '20240105', emptyTime: true })).toEqual([]);
  });
  it('repeated splitting of any window covers every second of every day exactly once', () => {
    const leaves: Scope[] = [];
    const walk = (s: Scope, depth: number) =>
      depth === 0 ? leaves.push(s) : splitScope(s).forEach((p) => walk(p, depth - 1));
    walk({ from: '20240101', to: '20240103' }, 4);
    const seconds = new Map<string, number>();
    for (const leaf of leaves) {
      for (let d = dayNumber(leaf.from); d <= dayNumber(leaf.to); d++) {
        if (leaf.emptyTime) continue;
        const [a, b] = leaf.time ?? [0, 86399];
        for (let t = a; t <= b; t += 997) seconds.set(`${d}:${t}`, (seconds.get(`${d}:${t}`) ?? 0) + 1);
      }
    }
    expect(new Set(seconds.values())).toEqual(new Set([1]));
  });
  it('scope → QIDO keys', () => {
    expect(scopeParams({ from: '20240101', to: '20240101' })).toEqual([['StudyDate', '20240101']]);
    expect(scopeParams({ from: '20240101', to: '20240102', time: [3600, 7199] })).toEqual([
      ['StudyDate', '20240101-20240102'],
      ['StudyTime', '010000-015959.999999'],
    ]);
    expect(scopeParams({ from: '20240101', to: '20240101', emptyTime: true })).toEqual([
      ['StudyDate', '20240101'],
      ['StudyTime', '""'],
    ]);
  });
});

describe('uidBatches', () => {
  it('cuts batches of the configured size, in order, keeping every UID once', () => {
    const uids = Array.from({ length: 25 }, (_, i) => `1.2.${i}`);
    const batches = uidBatches(uids, 10);
    expect(batches.map((b) => b.length)).toEqual([10, 10, 5]);
    expect(batches.flat()).toEqual(uids);
  });

  it('keeps each comma-joined list within the URL budget, also with 64-character UIDs', () => {
    const long = Array.from({ length: 250 }, (_, i) => `1.2.${String(i).padStart(60, '9')}`);
    expect(long[0]).toHaveLength(64);
    const batches = uidBatches(long, 200);
    for (const b of batches) expect(b.join(',').length).toBeLessThanOrEqual(MAX_UID_LIST_CHARS);
    expect(batches[0].length).toBe(Math.floor((MAX_UID_LIST_CHARS + 1) / 65));
    expect(batches.flat()).toEqual(long);
    // A UID longer than the budget still goes, alone.
    expect(uidBatches(['1'.repeat(20), 'x'.repeat(MAX_UID_LIST_CHARS + 1), '2'], 10, MAX_UID_LIST_CHARS)).toEqual([
      ['1'.repeat(20)],
      ['x'.repeat(MAX_UID_LIST_CHARS + 1)],
      ['2'],
    ]);
  });
});

describe('day numbers', () => {
  it('round-trip for years below 100 too', () => {
    for (const da of ['00010101', '00991231', '18000229'.replace('29', '28'), '20240229', '99991231']) {
      expect(fromDayNumber(dayNumber(da))).toBe(da);
    }
    expect(dayNumber('00010102') - dayNumber('00010101')).toBe(1);
  });
});

describe('isolatingBadRows', () => {
  const FIELDS = ['A', 'B', 'C', 'D', 'E', 'F', 'G'];
  /** Rows 3 and 7 cannot render C; row 5 cannot render C nor F; the server answers 400 for the whole page. */
  const refusedBy: Record<number, string[]> = { 3: ['C'], 5: ['C', 'F'], 7: ['C'] };
  function server(rows: DicomDataset[], calls: string[]) {
    return async (limit: number, offset: number, fields: readonly string[]): Promise<PageAnswer> => {
      calls.push(`${offset}+${limit}:${fields.join('')}`);
      const slice = rows.slice(offset, offset + limit);
      if (slice.some((_, i) => (refusedBy[offset + i] ?? []).some((f) => fields.includes(f))))
        throw new PacsError('Bad request', 400, 'http', false);
      return { datasets: slice, truncated: false };
    };
  }

  it('fetches a refused page in halves and a refused row without only the attributes it refuses', async () => {
    const { isolatingBadRows } = await import('../../../src/dicomweb/paging');
    const rows = corpus(10);
    const calls: string[] = [];
    const dropped: Record<string, string> = {};
    const refused = new Set<string>();
    const page = await isolatingBadRows(server(rows, calls), FIELDS, refused, (ds, without) => {
      for (const d of ds) dropped[uidOf(d)!] = [...without].sort().join('');
    })(10, 0);
    expect(page.datasets.map(uidOf)).toEqual(rows.map(uidOf));
    // Row 3 is bisected; row 5 tries the remembered C first, then bisects; row 7 tries C and F alone, then without C.
    expect(dropped).toEqual({ '1.2.3': 'C', '1.2.5': 'CF', '1.2.7': 'C' });
    expect([...refused].sort()).toEqual(['C', 'F']);
    expect(calls).toContain('7+1:ABDEFG');
    expect(calls.filter((c) => c.startsWith('7+1:'))).toEqual(['7+1:ABCDEFG', '7+1:C', '7+1:F', '7+1:ABDEFG']);
    expect(calls.some((c) => c.endsWith(':'))).toBe(false); // no row fell back to default attributes
  });

  it('a row refused whatever is asked falls back to the default attributes', async () => {
    const { isolatingBadRows } = await import('../../../src/dicomweb/paging');
    const rows = corpus(2);
    const calls: string[] = [];
    // Refuses any includefield with two or more attributes: no single attribute is to blame.
    const fetch = async (limit: number, offset: number, fields: readonly string[]): Promise<PageAnswer> => {
      calls.push(`${offset}+${limit}:${fields.join('')}`);
      if (fields.length > 1) throw new PacsError('Bad request', 400, 'http', false);
      return { datasets: rows.slice(offset, offset + limit), truncated: false };
    };
    const dropped: string[][] = [];
    const page = await isolatingBadRows(fetch, ['A', 'B'], new Set(), (_, w) => dropped.push([...w]))(1, 0);
    expect(page.datasets).toHaveLength(1);
    expect(dropped).toEqual([['A', 'B']]);
    expect(calls[calls.length - 1]).toBe('0+1:');
  });

  it('a query the server always refuses still fails', async () => {
    const { isolatingBadRows } = await import('../../../src/dicomweb/paging');
    const fetch = async (): Promise<PageAnswer> => {
      throw new PacsError('Bad request', 400, 'http', false);
    };
    await expect(isolatingBadRows(fetch, ['A'], new Set(), () => {})(8, 0)).rejects.toMatchObject({ status: 400 });
  });
});
