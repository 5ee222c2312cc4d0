/**
 * Waiting before a retry, shared by every outbound client (PACS, FHIR server): Retry-After as the
 * server asked, else exponential backoff with jitter. Each client keeps its own policy on top.
 */

/** Retry-After as milliseconds from now: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function parseRetryAfter(header: string | null | undefined, now: number = Date.now()): number | undefined {
  if (header === undefined || header === null) return undefined;
  const text = String(header).trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Exponential backoff with "equal jitter": half the step fixed, half random, so clients spread out
 * and a wait never collapses to zero. `attempt` is 0-based.
 */
export function jitteredBackoff(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const step = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.round(step / 2 + (random() * step) / 2);
}
