import { parseRetryAfter } from '../../../src/http/backoff';
import { backoffDelay, RetryableError, withRetry } from '../../../src/dicomweb/retry';
import { PacsError } from '../../../src/dicomweb/types';

const policy = { retries: 3, baseMs: 100, maxMs: 1000 };
const noSleep = async () => {};

describe('backoff', () => {
  it('doubles per attempt with jitter between half and full step, capped', () => {
    expect(backoffDelay(0, policy, undefined, () => 0)).toBe(50);
    expect(backoffDelay(0, policy, undefined, () => 1)).toBe(100);
    expect(backoffDelay(3, policy, undefined, () => 0)).toBe(400);
    expect(backoffDelay(10, policy, undefined, () => 1)).toBe(1000);
  });
  it('waits at least Retry-After, still capped', () => {
    expect(backoffDelay(0, policy, 700, () => 0)).toBe(700);
    expect(backoffDelay(0, policy, 5000, () => 0)).toBe(1000);
  });
  it('Retry-After as seconds or HTTP-date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    const now = Date.parse('2024-01-01T00:00:00Z');
    expect(parseRetryAfter('Mon, 01 Jan 2024 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe('withRetry', () => {
  it('retries retryable errors, then succeeds', async () => {
    let n = 0;
    const delays: number[] = [];
    const out = await withRetry(
      async () => {
        if (++n < 3) throw new RetryableError('busy', 503, 'http', 200);
        return 'ok';
      },
      policy,
      (_e, _a, d) => delays.push(d),
      noSleep,
    );
    expect(out).toBe('ok');
    expect(n).toBe(3);
    expect(delays.every((d) => d >= 200)).toBe(true);
  });
  it('gives up after `retries` retries with the last error', async () => {
    let n = 0;
    await expect(
      withRetry(
        async () => {
          n++;
          throw new PacsError('down', 0, 'network', true);
        },
        policy,
        undefined,
        noSleep,
      ),
    ).rejects.toThrow('down');
    expect(n).toBe(4);
  });
  it('never retries a non-retryable error (other 4xx, auth)', async () => {
    let n = 0;
    await expect(
      withRetry(
        async () => {
          n++;
          throw new PacsError('bad', 400, 'http', false);
        },
        policy,
        undefined,
        noSleep,
      ),
    ).rejects.toThrow('bad');
    expect(n).toBe(1);
  });
});
