/**
 * Errors from talking to the FHIR server, classified by what the caller should do about them.
 */
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
  ) {
    super(message);
    this.name = 'FhirSinkError';
  }
}
