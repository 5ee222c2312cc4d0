/**
 * The sink's HTTP client for the FHIR server (axios), through the outbound HTTP policy (src/http):
 * credentials from the Authorizer (one fresh OAuth2 token after a 401), retries of network errors,
 * timeouts, 408/429/5xx with backoff honouring Retry-After, the one timeout rule, each attempt observed
 * for the metrics; and counts every request by purpose so requests per synced study can be reported.
 */
import axios, { type AxiosInstance, type AxiosResponse, type Method } from 'axios';
import type { Logger } from '../../log';
import {
  authorizedRequest,
  type Authorizer,
  parseRetryAfter,
  observed,
  type OutboundMetrics,
  type RequestObserver,
  withRetry,
  type RetryPolicy,
  type Transient,
  withDeadline,
} from '../../http';
import type { FhirSinkConfig } from './config';
import { createFhirAuthorizer } from './auth';
import { FhirSinkError } from './errors';
import { errorBodyText } from './outcome';
import { fhirRetryPolicy, isRetryableStatus } from './retry';

/** The `server` label of FHIR request metrics; matches fhir_requests_total{server="fhir"}. */
const FHIR_SERVER_LABEL = 'fhir';

export type RequestKind = 'metadata' | 'endpoint' | 'lookup' | 'transaction' | 'read' | 'update' | 'delete';

export interface FhirRequestSpec {
  kind: RequestKind;
  method: Method;
  /** Relative to the base ("" for transactions). */
  url: string;
  data?: unknown;
  headers?: Record<string, string>;
  /** Retries for this request instead of the configured number (0 for a quick health probe). */
  retries?: number;
}

export interface HttpCounters {
  byKind: Record<RequestKind, number>;
  /** Attempts repeated after 429/5xx/network errors. */
  retries: number;
  /** Requests repeated with a fresh token after a 401. */
  authRetries: number;
}

export type FhirHttpConfig = Pick<
  FhirSinkConfig,
  'baseUrl' | 'auth' | 'timeoutMs' | 'retries' | 'backoffMs' | 'maxBackoffMs' | 'maxRetryAfterMs'
>;

const unauthorized = (e: unknown) => e instanceof FhirSinkError && e.kind === 'auth' && e.status === 401;

export class FhirHttpClient {
  readonly counters: HttpCounters = {
    byKind: { metadata: 0, endpoint: 0, lookup: 0, transaction: 0, read: 0, update: 0, delete: 0 },
    retries: 0,
    authRetries: 0,
  };
  private readonly http: AxiosInstance;
  private readonly auth: Authorizer;
  private readonly policy: RetryPolicy;
  private readonly observe?: RequestObserver;

  constructor(
    private readonly config: FhirHttpConfig,
    private readonly logger: Logger,
    metrics?: OutboundMetrics,
  ) {
    this.http = axios.create({
      baseURL: config.baseUrl.replace(/\/+$/, ''),
      maxBodyLength: Infinity,
      maxContentLength: Infinity,
      // Every status is an answer to classify here, not an exception.
      validateStatus: () => true,
      headers: { Accept: 'application/fhir+json', 'Content-Type': 'application/fhir+json' },
    });
    this.auth = createFhirAuthorizer(config.auth, config.timeoutMs);
    this.policy = fhirRetryPolicy(config);
    this.observe = metrics?.fhirRequests(FHIR_SERVER_LABEL);
  }

  get tokenRequests(): number {
    return this.auth.tokenRequests;
  }

  get totalRequests(): number {
    return Object.values(this.counters.byKind).reduce((a, b) => a + b, 0);
  }

  /** Sends a request; resolves with any 2xx/3xx answer, throws FhirSinkError otherwise. */
  send<T = unknown>(spec: FhirRequestSpec): Promise<AxiosResponse<T>> {
    const authorized = authorizedRequest(this.auth, unauthorized, () => this.counters.authRetries++);
    return withRetry((n) => authorized((authorization) => this.attempt<T>(spec, authorization, n)), this.policy, {
      retries: spec.retries,
      transient: (e) => this.transient(e),
      onRetry: (e: FhirSinkError, attemptNo, delayMs) => this.onRetry(spec, e, attemptNo, delayMs),
    });
  }

  /** One attempt (number `n`, from 0): counted, observed, an error status thrown as a FhirSinkError. */
  private async attempt<T>(spec: FhirRequestSpec, authorization: string | undefined, n: number) {
    this.counters.byKind[spec.kind]++;
    const res = await observed(this.observe, spec.kind, () => this.exchange<T>(spec, authorization, n), {
      answer: (r) => r.status,
      failure: () => 0,
    });
    if (res.status < 400) return res;
    throw this.errorFor(res, spec, n + 1);
  }

  private async exchange<T>(spec: FhirRequestSpec, authorization: string | undefined, n: number) {
    try {
      return await withDeadline(this.config.timeoutMs, (signal) =>
        this.http.request<T>({
          method: spec.method,
          url: spec.url,
          data: spec.data,
          signal,
          headers: { ...spec.headers, ...(authorization ? { Authorization: authorization } : {}) },
        }),
      );
    } catch (err) {
      const message = (err as Error).message;
      throw new FhirSinkError(`FHIR server unreachable (${spec.kind}, ${n + 1} attempts): ${message}`, 'network', true);
    }
  }

  /** No answer, or a status the policy says may change by waiting. */
  private transient(e: unknown): Transient | undefined {
    if (!(e instanceof FhirSinkError)) return undefined;
    const byStatus = e.kind === 'http' && e.status !== undefined && this.policy.retryableStatus(e.status);
    return e.kind === 'network' || byStatus ? { retryAfterMs: e.retryAfterMs } : undefined;
  }

  private onRetry(spec: FhirRequestSpec, e: FhirSinkError, attemptNo: number, delayMs: number): void {
    this.counters.retries++;
    const why = e.kind === 'network' ? `network error: ${e.message}` : `status ${e.status}`;
    // Kind and status only: lookup URLs carry patient identifiers.
    this.logger.warn(
      { kind: spec.kind, attempt: attemptNo, delayMs, retryAfterMs: e.retryAfterMs },
      `FHIR ${spec.kind} request: ${why}; retrying`,
    );
  }

  private errorFor(res: AxiosResponse, spec: FhirRequestSpec, attempts: number): FhirSinkError {
    const detail = errorBodyText(res.data) ?? res.statusText ?? '';
    if (res.status === 401 || res.status === 403) {
      return new FhirSinkError(
        `FHIR server rejected the credentials (${res.status}${detail ? `: ${detail}` : ''}) — check sinks.fhir.auth`,
        'auth',
        true,
        res.status,
      );
    }
    const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
    return new FhirSinkError(
      `FHIR ${spec.kind} failed with ${res.status}${tries}: ${detail}`,
      'http',
      isRetryableStatus(res.status) || res.status === 409 || res.status === 412,
      res.status,
      parseRetryAfter(res.headers['retry-after'] as string | undefined),
    );
  }
}
