/**
 * Adaptive listing windows: sized by what the PACS returns, so listing a range costs about one request per
 * page. A simulated PACS here is only a per-day count (the planner is pure); the request counts against
 * Orthanc are measured in test/integration/sync/sweep.test.ts and bench/sweep.ts.
 */
import { AdaptiveWindows, windowDays } from '../../../src/dicomweb/windows';
import { dayNumber, fromDayNumber } from '../../../src/time';

const PAGE = 100;

/** Requests one window costs with limit/offset paging: a short page ends it (a full last page needs one more). */
const requestsFor = (n: number) => Math.floor(n / PAGE) + 1;

/** Lists from..to with the planner against per-day counts; returns requests, windows and what was listed. */
function walk(counts: Map<string, number>, planner: AdaptiveWindows, cap?: number) {
  let requests = 0;
  let listed = 0;
  const windows: { from: string; to: string }[] = [];
  for (let w = planner.next(); w; w = planner.next()) {
    for (;;) {
      let n = 0;
      const dates: string[] = [];
      for (const [day, k] of counts) {
        if (day < w.from || day > w.to) continue;
        n += k;
        for (let i = 0; i < k; i++) dates.push(day);
      }
      const max = cap !== undefined ? planner.capFor(w) : undefined;
      if (max !== undefined && n > max) {
        requests += Math.ceil((max + 1) / PAGE); // pages read before the listing stopped
        w = planner.overflowed(w, dates.slice(0, max + 1));
        continue;
      }
      requests += requestsFor(n);
      listed += n;
      planner.listed(w, n);
      windows.push(w);
      break;
    }
  }
  return { requests, listed, windows };
}

function corpus(from: string, days: number, studies: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < studies; i++) {
    const day = fromDayNumber(dayNumber(from) + (i % days));
    m.set(day, (m.get(day) ?? 0) + 1);
  }
  return m;
}

const floorRequests = (studies: number) => Math.floor(studies / PAGE) + 1;
const plan = (over: Partial<ConstructorParameters<typeof AdaptiveWindows>[0]> = {}) =>
  new AdaptiveWindows({ from: '20230101', to: '20231231', targetStudies: 950, initialDays: 7, ...over });

describe('adaptive windows', () => {
  it('a sparse PACS (2,000 studies over 365 days) costs about the pages of its listing, not one request a week', async () => {
    const counts = corpus('20230101', 365, 2000);
    const r = walk(counts, plan());
    expect(r.listed).toBe(2000);
    expect(r.requests).toBeLessThanOrEqual(Math.ceil(1.1 * floorRequests(2000))); // 21 → ≤ 24
    expect(r.requests).toBeLessThan(53);
    // Contiguous and complete.
    expect(r.windows[0]!.from).toBe('20230101');
    expect(r.windows[r.windows.length - 1]!.to).toBe('20231231');
    for (let i = 1; i < r.windows.length; i++)
      expect(dayNumber(r.windows[i]!.from)).toBe(dayNumber(r.windows[i - 1]!.to) + 1);
  });

  it('a dense PACS (25 studies a day) gets short windows of a few pages each', async () => {
    const counts = corpus('20230101', 80, 2000);
    const r = walk(counts, plan({ to: '20230321' }));
    expect(r.listed).toBe(2000);
    expect(r.requests).toBeLessThanOrEqual(Math.ceil(1.1 * floorRequests(2000)));
    expect(Math.max(...r.windows.map(windowDays))).toBeLessThanOrEqual(40);
  });

  it("with the store's per-day counts, the first window is already the right size and empty centuries are one window", async () => {
    const counts = corpus('20230101', 80, 2000);
    const r = walk(counts, plan({ from: '00010101', to: '99991231', known: counts }));
    expect(r.listed).toBe(2000);
    expect(r.windows[0]).toEqual({ from: '00010101', to: expect.stringMatching(/^2023/) });
    expect(r.windows[r.windows.length - 1]!.to).toBe('99991231');
    // The known tail (and the empty millennia after it) is one window: no more requests than the floor.
    expect(r.windows).toHaveLength(2);
    expect(r.requests).toBeLessThanOrEqual(floorRequests(2000));
  });

  it('a window far denser than estimated is abandoned at its cap and planned again from what it saw', async () => {
    // Nothing known; ten quiet years, then 20,000 studies in 100 days.
    const counts = corpus('20200101', 100, 20000);
    counts.set('20100101', 3);
    const r = walk(counts, plan({ from: '20100101', to: '20201231', maxStudies: 3800 }), 3800);
    expect(r.listed).toBe(20003);
    // Each listed window stays near its target: no window held the whole dense region.
    const sizes = r.windows.map((w) => [...counts].reduce((n, [d, k]) => (d >= w.from && d <= w.to ? n + k : n), 0));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(3800);
    // The pages read before each abandoned listing are the price of not knowing (once per density jump).
    expect(r.requests).toBeLessThanOrEqual(1.4 * floorRequests(20003));
  });

  it('a single dense day is listed whole (it cannot be narrowed by date), without a cap', async () => {
    const p = plan({ maxStudies: 10 });
    expect(p.capFor({ from: '20230101', to: '20230101' })).toBeUndefined();
    expect(p.capFor({ from: '20230101', to: '20230102' })).toBe(10);
  });
});

describe('calendar arithmetic near year 1 (where the sweep starts)', () => {
  it('adds days to dates before the year 100 without reading them as 19xx', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { addDays, daysBetween } = require('../../../src/time') as typeof import('../../../src/time');
    expect(addDays('00010106', 1)).toBe('00010107');
    expect(addDays('00991231', 1)).toBe('01000101');
    expect(daysBetween('00010101', '00020101')).toBe(365);
  });
});
