/**
 * The sink's HTTP client for the FHIR server (axios): adds credentials, retries 429/5xx/network
 * errors with backoff honouring Retry-After, retries once after a 401 with a fresh token, and counts
 * every request by purpose so requests per synced study can be reported.
 */
import axios, { type AxiosInstance, type AxiosResponse, type Method } from 'axios';
import type { Logger } from '../../log';
import type { FhirSinkConfig } from './config';
import { createTokenSource, type TokenSource } from './auth';
import { FhirSinkError } from './errors';
import { errorBodyText } from './outcome';
import { isRetryableStatus, retryDelay } from './retry';
import { metrics } from '../../metrics';

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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class FhirHttpClient {
  readonly counters: HttpCounters = {
    byKind: { metadata: 0, endpoint: 0, lookup: 0, transaction: 0, read: 0, update: 0, delete: 0 },
    retries: 0,
    authRetries: 0,
  };
  private readonly http: AxiosInstance;
  private readonly tokens: TokenSource;

  constructor(
    private readonly config: Pick<
      FhirSinkConfig,
      'baseUrl' | 'auth' | 'timeoutMs' | 'retries' | 'backoffMs' | 'maxBackoffMs' | 'maxRetryAfterMs'
    >,
    private readonly logger: Logger,
  ) {
    this.http = axios.create({
      baseURL: config.baseUrl.replace(/\/+$/, ''),
      timeout: config.timeoutMs,
      maxBodyLength: Infinity,
      maxContentLength: Infinity,
      // Every status is an answer to classify here, not an exception.
      validateStatus: () => true,
      headers: { Accept: 'application/fhir+json', 'Content-Type': 'application/fhir+json' },
    });
    this.tokens = createTokenSource(config.auth, config.timeoutMs);
  }

  get tokenRequests(): number {
    return this.tokens.tokenRequests;
  }

  get totalRequests(): number {
    return Object.values(this.counters.byKind).reduce((a, b) => a + b, 0);
  }

  /** Sends a request; resolves with any 2xx/3xx answer, throws FhirSinkError otherwise. */
  async send<T = unknown>(spec: FhirRequestSpec): Promise<AxiosResponse<T>> {
    let refreshed = false;
    const retries = spec.retries ?? this.config.retries;
    for (let attempt = 0; ; attempt++) {
      const authorization = await this.tokens.authorization();
      let res: AxiosResponse<T>;
      const started = process.hrtime.bigint();
      const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
      try {
        this.counters.byKind[spec.kind]++;
        res = await this.http.request<T>({
          method: spec.method,
          url: spec.url,
          data: spec.data,
          headers: { ...spec.headers, ...(authorization ? { Authorization: authorization } : {}) },
        });
      } catch (err) {
        metrics.fhirRequest(FHIR_SERVER_LABEL, spec.kind, 0, seconds());
        const message = (err as Error).message;
        if (attempt < retries) {
          await this.pause(spec, attempt, undefined, `network error: ${message}`);
          continue;
        }
        throw new FhirSinkError(
          `FHIR server unreachable (${spec.kind}, ${attempt + 1} attempts): ${message}`,
          'network',
          true,
        );
      }
      metrics.fhirRequest(FHIR_SERVER_LABEL, spec.kind, res.status, seconds());
      if (res.status < 400) return res;

      if (res.status === 401 && !refreshed && this.tokens.invalidate()) {
        // The token may have expired or been revoked: one more try with a fresh one.
        refreshed = true;
        this.counters.authRetries++;
        attempt--;
        continue;
      }
      if (isRetryableStatus(res.status) && attempt < retries) {
        await this.pause(spec, attempt, res.headers['retry-after'] as string | undefined, `status ${res.status}`);
        continue;
      }
      throw this.errorFor(res, spec, attempt + 1);
    }
  }

  private async pause(spec: FhirRequestSpec, attempt: number, retryAfter: string | undefined, why: string) {
    const delay = retryDelay(attempt, retryAfter, this.config);
    this.counters.retries++;
    // Kind and status only: lookup URLs carry patient identifiers.
    this.logger.warn(
      { kind: spec.kind, attempt: attempt + 1, delayMs: delay, retryAfter },
      `FHIR ${spec.kind} request: ${why}; retrying`,
    );
    await sleep(delay);
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
    );
  }
}
