/**
 * The FHIR server's values of the one outbound retry policy (src/http/retry.ts): network errors,
 * timeouts, 408, 429 and 5xx are retried with the configured backoff, honouring Retry-After up to
 * `maxRetryAfterMs`; other statuses will not change by waiting.
 */
import type { RetryPolicy } from '../../http';
import type { FhirSinkConfig } from './config';

/** 408, 429 and 5xx are worth retrying; other statuses will not change by waiting. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export function fhirRetryPolicy(
  config: Pick<FhirSinkConfig, 'retries' | 'backoffMs' | 'maxBackoffMs' | 'maxRetryAfterMs'>,
): RetryPolicy {
  return {
    retries: config.retries,
    baseMs: config.backoffMs,
    maxBackoffMs: config.maxBackoffMs,
    maxRetryAfterMs: config.maxRetryAfterMs,
    retryableStatus: isRetryableStatus,
  };
}
