/**
 * Errors from talking to the FHIR server, classified by what the caller should do about them.
 */
import { isRetryableStatus } from './retry';

export type FhirErrorKind =
  /** 401/403, or the token endpoint refused: a configuration problem, nothing is written. */
  | 'auth'
  /** The server answered with an error status (after any retries). */
  | 'http'
  /** No answer: connection refused/reset, timeout, DNS (after any retries). */
  | 'network'
  /** The server is not usable (wrong FHIR version, no transactions). */
  | 'capability';

export class FhirSinkError extends Error {
  constructor(
    message: string,
    readonly kind: FhirErrorKind,
    /** Would the same request succeed later without changing it? */
    readonly retryable: boolean,
    readonly status?: number,
    /** The server's Retry-After, in ms, for the in-request retries. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'FhirSinkError';
  }
}

/**
 * The server as a whole is unavailable (after the in-request retries): no answer, a timeout, 408, 429
 * or a 5xx. Not any one study's fault: the sync ends the run as "sink unavailable" without charging
 * attempts. A 5xx to a transaction is confirmed with a health probe first (see FhirSink.writeChunk).
 */
export function isOutage(err: unknown): boolean {
  if (!(err instanceof FhirSinkError)) return false;
  if (err.kind === 'network') return true;
  return err.kind === 'http' && err.status !== undefined && isRetryableStatus(err.status);
}
