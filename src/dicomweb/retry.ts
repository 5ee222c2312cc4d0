/**
 * The PACS's values of the one outbound retry policy (src/http/retry.ts): network errors, timeouts,
 * 429 and 502–504 are retried with backoff, honouring Retry-After up to the backoff ceiling; other
 * statuses (a 500 from a PACS is usually a query it cannot run) fail at once.
 */
import type { RetryPolicy, Transient } from '../http';
import { PacsError } from './types';

/** Backoff tuning of a source (tests shorten it); attempts come from the source's `retries`. */
export interface PacsRetryTuning {
  /** First backoff step; doubles each attempt. */
  baseMs?: number;
  /** Longest wait between attempts, Retry-After included. */
  maxMs?: number;
}

export const pacsRetryableStatus = (status: number): boolean => status === 429 || (status >= 502 && status <= 504);

export function pacsRetryPolicy(retries: number, tuning: PacsRetryTuning = {}): RetryPolicy {
  const maxMs = tuning.maxMs ?? 30_000;
  return {
    retries,
    baseMs: tuning.baseMs ?? 500,
    maxBackoffMs: maxMs,
    maxRetryAfterMs: maxMs,
    retryableStatus: pacsRetryableStatus,
  };
}

/** A PacsError worth another attempt, with the server's Retry-After. */
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

/** The retry loop's view of a PACS failure: only errors that say they are retryable are tried again. */
export function pacsTransient(error: unknown): Transient | undefined {
  if (!(error instanceof PacsError) || !error.retryable) return undefined;
  return { retryAfterMs: error instanceof RetryableError ? error.retryAfterMs : undefined };
}
