/**
 * When and how long to wait before retrying a FHIR request. Pure functions; the HTTP client applies them.
 */
import { jitteredBackoff, parseRetryAfter } from '../../http/backoff';

/** 408, 429 and 5xx are worth retrying; other statuses will not change by waiting. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** The wait before retry number `attempt` (0-based): Retry-After when given (capped), else backoff. */
export function retryDelay(
  attempt: number,
  retryAfter: string | undefined | null,
  opts: { backoffMs: number; maxBackoffMs: number; maxRetryAfterMs: number },
  now: number = Date.now(),
): number {
  const asked = parseRetryAfter(retryAfter, now);
  if (asked !== undefined) return Math.min(asked, opts.maxRetryAfterMs);
  return jitteredBackoff(attempt, opts.backoffMs, opts.maxBackoffMs);
}
