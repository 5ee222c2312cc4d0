/**
 * Retries with exponential backoff and jitter, honouring Retry-After. Only errors that say they
 * are retryable (network, timeout, 429, 502–504) are retried; other 4xx fail at once.
 */
import { PacsError } from './types';

export interface RetryPolicy {
  retries: number;
  /** First backoff step; doubles each attempt. */
  baseMs: number;
  /** Longest wait between attempts, Retry-After included. */
  maxMs: number;
}

/** Retry-After as milliseconds from now: delta-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function parseRetryAfter(header: string | null | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const s = header.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const at = Date.parse(s);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** "Equal jitter": half the exponential step fixed, half random, so waits never collapse to zero. */
export function backoffDelay(attempt: number, policy: RetryPolicy, retryAfterMs?: number, random = Math.random): number {
  const step = Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
  const jittered = step / 2 + random() * (step / 2);
  return Math.min(policy.maxMs, Math.max(jittered, retryAfterMs ?? 0));
}

export class RetryableError extends PacsError {
  constructor(message: string, status: number, kind: PacsError['kind'], readonly retryAfterMs?: number) {
    super(message, status, kind, true);
  }
}

export async function withRetry<T>(
  attempt: () => Promise<T>,
  policy: RetryPolicy,
  onRetry: (error: PacsError, attemptNo: number, delayMs: number) => void = () => {},
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (e) {
      if (!(e instanceof PacsError) || !e.retryable || n >= policy.retries) throw e;
      const delay = backoffDelay(n, policy, e instanceof RetryableError ? e.retryAfterMs : undefined);
      onRetry(e, n + 1, delay);
      await sleep(delay);
    }
  }
}
