/**
 * The one retry policy and loop of every outbound client (PACS, FHIR server, their token endpoints).
 * Each client has its own policy values (which statuses, how many attempts, how long to wait) and its
 * own error type; the loop asks the client whether a failure is worth another attempt.
 */
import { jitteredBackoff } from './backoff';

export interface RetryPolicy {
  /** Attempts after the first. */
  retries: number;
  /** First backoff step; doubles each attempt, with jitter. */
  baseMs: number;
  /** Longest backoff step. */
  maxBackoffMs: number;
  /** Longest Retry-After honoured; a longer one is capped. */
  maxRetryAfterMs: number;
  /** Statuses that may change by waiting (no answer at all, status 0, is always one). */
  retryableStatus(status: number): boolean;
}

/** What the loop needs to know of a failed attempt worth repeating. */
export interface Transient {
  /** The server's Retry-After, in ms from now. */
  retryAfterMs?: number;
}

/** The wait before retry number `attempt` (0-based): the backoff step, or longer when the server asked (capped). */
export function retryDelay(
  attempt: number,
  policy: Pick<RetryPolicy, 'baseMs' | 'maxBackoffMs' | 'maxRetryAfterMs'>,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const step = jitteredBackoff(attempt, policy.baseMs, policy.maxBackoffMs, random);
  return Math.max(step, Math.min(retryAfterMs ?? 0, policy.maxRetryAfterMs));
}

export interface RetryHooks<E> {
  /** The failure as the loop sees it: undefined when another attempt cannot help (thrown at once). */
  transient(error: unknown): Transient | undefined;
  /** Called before each wait (counters, a log line). */
  onRetry?(error: E, attemptNo: number, delayMs: number): void;
  /** Attempts after the first for this call, instead of the policy's (0 for a quick probe). */
  retries?: number;
  sleep?: (ms: number) => Promise<void>;
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs `attempt(n)` (n counts from 0) until it succeeds, fails for good, or the attempt budget is spent. */
export async function withRetry<T, E = unknown>(
  attempt: (n: number) => Promise<T>,
  policy: RetryPolicy,
  hooks: RetryHooks<E>,
): Promise<T> {
  const retries = hooks.retries ?? policy.retries;
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (e) {
      const transient = n < retries ? hooks.transient(e) : undefined;
      if (!transient) throw e;
      const delay = retryDelay(n, policy, transient.retryAfterMs);
      hooks.onRetry?.(e as E, n + 1, delay);
      await (hooks.sleep ?? pause)(delay);
    }
  }
}
