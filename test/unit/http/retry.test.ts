import { parseRetryAfter } from '../../../src/http/backoff';
import { retryDelay, withRetry } from '../../../src/http/retry';
import { pacsRetryPolicy, pacsTransient, RetryableError } from '../../../src/dicomweb/retry';
import { PacsError } from '../../../src/dicomweb/types';
import { fhirRetryPolicy } from '../../../src/sinks/fhir/retry';

const policy = pacsRetryPolicy(3, { baseMs: 100, maxMs: 1000 });
const noSleep = async () => {};

describe('backoff', () => {
  it('doubles per attempt with jitter between half and full step, capped', () => {
    expect(retryDelay(0, policy, undefined, () => 0)).toBe(50);
    expect(retryDelay(0, policy, undefined, () => 1)).toBe(100);
    expect(retryDelay(3, policy, undefined, () => 0)).toBe(400);
    expect(retryDelay(10, policy, undefined, () => 1)).toBe(1000);
  });
  it('waits at least Retry-After, capped at the policy ceiling', () => {
    expect(retryDelay(0, policy, 700, () => 0)).toBe(700);
    expect(retryDelay(0, policy, 5000, () => 0)).toBe(1000);
    // The FHIR server's values: Retry-After has a ceiling of its own, above the backoff's.
    const fhir = fhirRetryPolicy({ retries: 4, backoffMs: 100, maxBackoffMs: 1000, maxRetryAfterMs: 5000 });
    expect(retryDelay(0, fhir, 2000, () => 0)).toBe(2000);
    expect(retryDelay(0, fhir, 600_000, () => 0)).toBe(5000);
  });
  it('Retry-After as seconds or HTTP-date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    const now = Date.parse('2024-01-01T00:00:00Z');
    expect(parseRetryAfter('Mon, 01 Jan 2024 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
  it('each client retries its own statuses', () => {
    const fhir = fhirRetryPolicy({ retries: 4, backoffMs: 1, maxBackoffMs: 1, maxRetryAfterMs: 1 });
    expect([429, 502, 503, 504].every(policy.retryableStatus)).toBe(true);
    expect([400, 401, 408, 500].some(policy.retryableStatus)).toBe(false);
    expect([408, 429, 500, 502, 503, 504].every(fhir.retryableStatus)).toBe(true);
    expect([400, 401, 404, 409, 412].some(fhir.retryableStatus)).toBe(false);
  });
});

describe('withRetry', () => {
  const hooks = (delays: number[] = []) => ({
    transient: pacsTransient,
    onRetry: (_e: unknown, _n: number, d: number) => delays.push(d),
    sleep: noSleep,
  });
  it('retries retryable errors, then succeeds', async () => {
    let n = 0;
    const delays: number[] = [];
    const out = await withRetry(
      async () => {
        if (++n < 3) throw new RetryableError('busy', 503, 'http', 200);
        return 'ok';
      },
      policy,
      hooks(delays),
    );
    expect(out).toBe('ok');
    expect(n).toBe(3);
    expect(delays).toHaveLength(2);
    expect(delays.every((d) => d >= 200)).toBe(true);
  });
  it('gives up after `retries` retries with the last error; a per-call budget overrides it', async () => {
    let n = 0;
    const down = async () => {
      n++;
      throw new PacsError('down', 0, 'network', true);
    };
    await expect(withRetry(down, policy, hooks())).rejects.toThrow('down');
    expect(n).toBe(4);
    n = 0;
    await expect(withRetry(down, policy, { ...hooks(), retries: 0 })).rejects.toThrow('down');
    expect(n).toBe(1);
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
        hooks(),
      ),
    ).rejects.toThrow('bad');
    expect(n).toBe(1);
  });
});
