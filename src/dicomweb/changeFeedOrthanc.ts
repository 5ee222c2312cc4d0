/**
 * Orthanc's change feed: `GET <REST root>/changes?since=&limit=` (answer: Changes, Last, Done), with the
 * source's own authentication and TLS. Events name Orthanc ids; `/studies/{id}` gives the Study
 * Instance UID, cached for good (an Orthanc study id is a hash of PatientID and StudyInstanceUID, so
 * it never comes to mean another study). Orthanc 1.10 reports no deletions here: deleting a study
 * removes its earlier entries and adds none, so sequence numbers have gaps, which are normal.
 * Every request goes through the one outbound policy (src/http) as QIDO-RS does: the source's retry policy
 * (429 and 502–504 retried with backoff, Retry-After honoured), and one fresh OAuth2 token after a 401.
 */
import type { Agent } from 'node:https';
import axios, { type AxiosInstance } from 'axios';
import pLimit from 'p-limit';
import { authorizedRequest, DeadlineError, parseRetryAfter, withDeadline, withRetry, type RetryPolicy } from '../http';
import type { Authorizer } from './auth';
import type { ChangeFeed, FeedEvent, FeedEventKind, FeedPage, FeedSourceConfig } from './changeFeed';
import { pacsTransient, RetryableError } from './retry';
import { PacsError } from './types';

/**
 * Orthanc's REST root for a source: the configured `changeFeed.restBase`, else the QIDO base
 * without its last path segment (Orthanc's DICOMweb plugin serves `<REST root>/dicom-web`).
 */
export function orthancRestBase(cfg: Pick<FeedSourceConfig, 'qidoBase' | 'changeFeed'>): string {
  if (cfg.changeFeed.restBase) return cfg.changeFeed.restBase.replace(/\/+$/, '');
  const url = new URL(cfg.qidoBase.replace(/\/+$/, ''));
  url.pathname = url.pathname.replace(/\/[^/]*$/, '');
  return url.toString().replace(/\/+$/, '');
}

interface OrthancChange {
  ChangeType: string;
  ID: string;
  ResourceType: string;
  Seq: number;
}

interface OrthancChanges {
  Changes: OrthancChange[];
  Last: number;
  Done: boolean;
}

/** Study ids → UIDs kept; far more than a burst of new studies between two polls. */
const UID_CACHE_SIZE = 50_000;

function kindOf(change: OrthancChange): FeedEventKind {
  if (change.ResourceType !== 'Study') return 'other';
  switch (change.ChangeType) {
    case 'StableStudy':
      return 'study-ready';
    case 'NewStudy':
      return 'study-changing';
    case 'Deleted': // later Orthanc versions; not 1.10
      return 'study-deleted';
    default:
      return 'other';
  }
}

export interface OrthancFeedOptions {
  auth: Authorizer;
  /** The source's retry policy (pacsRetryPolicy), the same as its QIDO-RS requests'. */
  retry: RetryPolicy;
  httpsAgent?: Agent;
  onRetry?: (error: PacsError, attempt: number, delayMs: number) => void;
}

interface Answer<T> {
  status: number;
  data: T;
}

/** A 401 a fresh token did not cure: handed back to the caller as an answer (the probe reads it as "not Orthanc"). */
class Unauthorized extends PacsError {
  constructor(label: string) {
    super(`${label}: HTTP 401`, 401, 'auth', false);
  }
}

export class OrthancChangeFeed implements ChangeFeed {
  readonly type = 'orthanc';
  readonly stats = { requests: 0, retries: 0 };
  readonly restBase: string;
  private readonly http: AxiosInstance;
  private readonly uids = new Map<string, string>();
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly label: string;
  private readonly timeoutMs: number;

  constructor(
    cfg: FeedSourceConfig,
    private readonly options: OrthancFeedOptions,
  ) {
    this.restBase = orthancRestBase(cfg);
    this.label = `PACS "${cfg.id}" change feed`;
    this.limit = pLimit(cfg.concurrency);
    this.timeoutMs = cfg.timeoutMs;
    this.http = axios.create({
      baseURL: this.restBase,
      httpsAgent: options.httpsAgent,
      // Every status is an answer to classify here, not an exception.
      validateStatus: () => true,
      headers: { Accept: 'application/json' },
    });
  }

  async poll(since: number, limit: number): Promise<FeedPage> {
    const answer = await this.get<OrthancChanges>(`/changes?since=${since}&limit=${limit}`, 'changes');
    if (answer.status !== 200) throw this.httpError('changes', answer.status);
    const body = answer.data;
    if (!body || !Array.isArray(body.Changes) || typeof body.Last !== 'number') {
      throw new PacsError(`${this.label}: /changes answered without Changes and Last`, 200, 'bad-response', true);
    }
    const events: FeedEvent[] = body.Changes.map((c) => {
      const kind = kindOf(c);
      return kind === 'other' ? { seq: c.Seq, kind } : { seq: c.Seq, kind, studyRef: c.ID };
    });
    return { events, last: body.Last, done: body.Done === true };
  }

  /**
   * Whether the REST root is Orthanc's: GET /system names a Version and a DatabaseVersion. Any other
   * answer (404 from another PACS, a login page) means no; a network failure is thrown.
   */
  async probeSystem(): Promise<boolean> {
    const answer = await this.get<{ Version?: unknown; DatabaseVersion?: unknown }>('/system', 'system');
    return (
      answer.status === 200 && typeof answer.data?.Version === 'string' && answer.data.DatabaseVersion !== undefined
    );
  }

  async head(): Promise<number> {
    const answer = await this.get<OrthancChanges>('/changes?last', 'changes');
    if (answer.status !== 200) throw this.httpError('changes', answer.status);
    return typeof answer.data?.Last === 'number' ? answer.data.Last : 0;
  }

  async studyUids(refs: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const unknown: string[] = [];
    for (const ref of new Set(refs)) {
      const uid = this.uids.get(ref);
      if (uid) out.set(ref, uid);
      else unknown.push(ref);
    }
    await Promise.all(
      unknown.map((ref) =>
        this.limit(async () => {
          const uid = await this.lookUp(ref);
          if (!uid) return;
          out.set(ref, uid);
          this.remember(ref, uid);
        }),
      ),
    );
    return out;
  }

  /** The UID of one Orthanc study, or undefined when the study is gone. */
  private async lookUp(ref: string): Promise<string | undefined> {
    const answer = await this.get<{ MainDicomTags?: { StudyInstanceUID?: string } }>(
      `/studies/${encodeURIComponent(ref)}`,
      'study',
    );
    if (answer.status === 404) return undefined;
    if (answer.status !== 200) throw this.httpError('study', answer.status);
    return answer.data?.MainDicomTags?.StudyInstanceUID?.trim() || undefined;
  }

  private remember(ref: string, uid: string): void {
    this.uids.set(ref, uid);
    if (this.uids.size > UID_CACHE_SIZE) this.uids.delete(this.uids.keys().next().value!);
  }

  /** One request: retried as the policy says, with one fresh OAuth2 token after a 401. */
  private async get<T>(path: string, what: string): Promise<Answer<T>> {
    const authorized = authorizedRequest(this.options.auth, (e) => e instanceof Unauthorized);
    try {
      return await withRetry(
        () => authorized((authorization) => this.attempt<T>(path, what, authorization)),
        this.options.retry,
        {
          transient: pacsTransient,
          onRetry: (e: PacsError, attempt, delayMs) => {
            this.stats.retries++;
            this.options.onRetry?.(e, attempt, delayMs);
          },
        },
      );
    } catch (err) {
      if (err instanceof Unauthorized) return { status: 401, data: undefined as T };
      throw err;
    }
  }

  /**
   * One attempt. Statuses the policy retries, and a 401 (for a fresh token), are thrown; any other status is
   * an answer for the caller to read (a 404 for a deleted study, /system answering as something else).
   */
  private async attempt<T>(path: string, what: string, authorization: string | undefined): Promise<Answer<T>> {
    this.stats.requests++;
    let res: { status: number; data: T; headers: Record<string, unknown> };
    try {
      const headers = authorization ? { Authorization: authorization } : {};
      // The one timeout rule of outbound requests (src/http/timeout.ts): the whole exchange.
      res = await withDeadline(this.timeoutMs, (signal) => this.http.get<T>(path, { headers, signal }));
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const timedOut = err instanceof DeadlineError || e.code === 'ECONNABORTED' || e.code === 'ETIMEDOUT';
      throw new PacsError(
        `${this.label} ${what}: ${timedOut ? 'no answer in time' : (e.code ?? e.message ?? 'network error')}`,
        0,
        timedOut ? 'timeout' : 'network',
        true,
      );
    }
    if (res.status === 401) throw new Unauthorized(`${this.label} ${what}`);
    if (this.options.retry.retryableStatus(res.status)) {
      const retryAfter = parseRetryAfter(res.headers['retry-after'] as string | undefined);
      throw new RetryableError(`${this.label} ${what}: HTTP ${res.status}`, res.status, 'http', retryAfter);
    }
    return { status: res.status, data: res.data };
  }

  private httpError(what: string, status: number): PacsError {
    if (status === 401 || status === 403)
      return new PacsError(`${this.label} ${what}: HTTP ${status} (check sources[].auth)`, status, 'auth', false);
    return new PacsError(`${this.label} ${what}: HTTP ${status}`, status, 'http', status === 429 || status >= 500);
  }
}
