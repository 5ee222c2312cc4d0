/** The sweep's request budget (spacing, clinical hours) and its once-per-sweep warnings. */
import { sweepSchema } from '../../../src/sync/config';
import { pacedRequest, RequestPacer, runPaced, sweepRate, warnOnce } from '../../../src/sync/sweepPace';

describe('RequestPacer', () => {
  it('spaces request starts by 60 000 / rate ms; the first goes at once', async () => {
    const pacer = new RequestPacer(() => 1200); // one every 50 ms
    const starts: number[] = [];
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) {
      await pacer.acquire();
      starts.push(Date.now() - t0);
    }
    expect(starts[0]).toBeLessThan(20);
    expect(starts[4]).toBeGreaterThanOrEqual(4 * 50 - 5);
  });

  it('paces only work started inside runPaced', async () => {
    const pacer = new RequestPacer(() => 60); // one a second
    await runPaced(pacer, async () => {
      await pacedRequest();
      const t0 = Date.now();
      await Promise.resolve().then(() => pacedRequest());
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    });
    const t1 = Date.now();
    await pacedRequest(); // outside: a poll or a lookup
    expect(Date.now() - t1).toBeLessThan(20);
  });
});

describe('sweepRate', () => {
  const sweep = sweepSchema.parse({
    maxRequestsPerMinute: 120,
    clinicalHours: { from: '07:30', to: '18:00', maxRequestsPerMinute: 30 },
  });
  it('uses the clinical-hours budget between those local times in the source zone', () => {
    const rate = sweepRate(sweep, 'Asia/Taipei'); // UTC+8
    expect(rate(new Date('2026-11-30T00:00:00Z'))).toBe(30); // 08:00 local
    expect(rate(new Date('2026-11-29T23:29:00Z'))).toBe(120); // 07:29 local
    expect(rate(new Date('2026-11-30T10:00:00Z'))).toBe(120); // 18:00 local
  });
  it('handles hours that wrap midnight, and no clinical hours at all', () => {
    const night = sweepSchema.parse({ clinicalHours: { from: '22:00', to: '06:00', maxRequestsPerMinute: 10 } });
    const rate = sweepRate(night, '+0000');
    expect(rate(new Date('2026-11-30T23:00:00Z'))).toBe(10);
    expect(rate(new Date('2026-11-30T05:59:00Z'))).toBe(10);
    expect(rate(new Date('2026-11-30T12:00:00Z'))).toBe(120);
    expect(sweepRate(sweepSchema.parse({}), 'Asia/Taipei')(new Date())).toBe(120);
  });
});

describe('warnOnce', () => {
  it('warns once per distinct warning until reset, then debug', () => {
    const seen: string[] = [];
    const log = warnOnce({ warn: (_o, m) => seen.push(`warn ${m}`), debug: (_o, m) => seen.push(`debug ${m}`) });
    log.warn({ uids: ['1.2'] }, 'cannot render');
    log.warn({ uids: ['1.2'] }, 'cannot render');
    log.warn({ uids: ['1.3'] }, 'cannot render');
    log.reset();
    log.warn({ uids: ['1.2'] }, 'cannot render');
    expect(seen).toEqual(['warn cannot render', 'debug cannot render', 'warn cannot render', 'warn cannot render']);
  });
});
