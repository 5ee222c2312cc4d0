/**
 * Retries with exponential backoff and jitter, honouring Retry-After. Only errors that say they
 * are retryable (network, timeout, 429, 502–504) are retried; other 4xx fail at once.
 */
import { jitteredBackoff } from '../http/backoff';
import { PacsError } from './types';

export interface RetryPolicy {
  retries: number;
  /** First backoff step; doubles each attempt. */
  baseMs: number;
  /** Longest wait between attempts, Retry-After included. */
  maxMs: number;
}

/** The shared jittered step, raised to what the server asked for, never above the policy's ceiling. */
export function backoffDelay(
  attempt: number,
  policy: RetryPolicy,
  retryAfterMs?: number,
  random = Math.random,
): number {
  return Math.min(
    policy.maxMs,
    Math.max(jitteredBackoff(attempt, policy.baseMs, policy.maxMs, random), retryAfterMs ?? 0),
  );
}

export class RetryableError extends PacsError {
  constructor(
    message: string,
    status: number,
    kind: PacsError['kind'],
    readonly retryAfterMs?: number,
  ) {
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
