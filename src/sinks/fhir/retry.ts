/**
 * When and how long to wait before retrying a FHIR request. Pure functions; the HTTP client applies them.
 */

/** 408, 429 and 5xx are worth retrying; other statuses will not change by waiting. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Returns milliseconds from `now`,
 * or undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined | null, now: number = Date.now()): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = String(value).trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Exponential backoff with "equal jitter": half fixed, half random, so clients spread out. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
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
  return backoffDelay(attempt, opts.backoffMs, opts.maxBackoffMs);
}
