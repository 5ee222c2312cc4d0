/**
 * The FHIR-server sink: writes each batch of studies as transaction Bundles of conditional (or
 * client-id) updates, after ensuring each source's Endpoint once, linking patients per source, and
 * splitting a rejected transaction until the bad study is isolated so the good ones are written.
 */
import type { Bundle, BundleEntry, Endpoint, ImagingStudy, Patient } from 'fhir/r4';
import type { OutboundMetrics } from '../../http';
import { silentLogger, type Logger } from '../../log';
import type { Sink, StudyWrite, WriteOutcome } from '../sink';
import {
  buildTransaction,
  endpointIdentifier,
  entryCount,
  prepareStudy,
  withTag,
  writtenIdentity,
  type PreparedStudy,
} from './bundle';
import { capabilityProblems, type CapabilitySummary } from './capability';
import { fhirSinkSchema, type FhirSinkConfig, type FhirSinkInput, type PatientLinking } from './config';
import { FhirSinkError, isOutage } from './errors';
import { FhirHttpClient, type RequestKind } from './http';
import { operationOutcomeText, isOperationOutcome } from './outcome';
import { patientIdentifier, planPatientLink, PatientLookup, type Identifier } from './patientLink';
import { studyCriteria, tokenParam } from './query';

export const FHIR_SINK_NAME = 'fhir';

export interface FhirSinkStats {
  /** HTTP requests to the FHIR server (token endpoint excluded), by purpose. */
  requests: { total: number; byKind: Record<RequestKind, number> };
  /** Requests to the OAuth2 token endpoint. */
  tokenRequests: number;
  retries: number;
  authRetries: number;
  transactions: number;
  /** Transactions split in two after the server rejected them. */
  splits: number;
  studiesWritten: number;
  studiesFailed: number;
  /** FHIR requests per study written so far (all requests, including start-up and failures). */
  requestsPerStudy?: number;
  /** Studies linked per applied mode, and how many of those were fallbacks. */
  patientLinks: Record<string, number>;
  fallbacks: number;
}

export interface FhirSinkDeps {
  logger?: Logger;
  /** Where each request's interaction, status and duration are recorded (BridgeMetrics); none: not recorded. */
  metrics?: OutboundMetrics;
  /**
   * The profile guard for the Patients this sink creates (`create` linking): undefined when one may be written,
   * else why not, without patient values (src/mapping's createPatientGuard). None: Patients are not validated.
   */
  patientGuard?: (patient: Patient) => string | undefined;
}

interface EndpointState {
  reference: string;
  contentKey: string;
}

const writeKey = (w: Pick<StudyWrite, 'sourceId' | 'studyUid'>) => `${w.sourceId}\u0000${w.studyUid}`;

/** Client errors that one bad study can cause, so splitting the batch can isolate it. */
function splittable(err: FhirSinkError): boolean {
  return (
    err.kind === 'http' &&
    err.status !== undefined &&
    err.status >= 400 &&
    err.status < 500 &&
    ![401, 403, 408, 429].includes(err.status)
  );
}

/**
 * How many studies must fail alone with a 5xx, with nothing written in the batch, before the server is
 * taken for down (writes failing while GET metadata still answers). One alone may be a bad study.
 */
const SUSPECTS_FOR_OUTAGE = 2;

/** What one writeBatch has learnt about the server's health so far. */
interface BatchHealth {
  /** Studies written by this batch's transactions. */
  written: number;
  /** Studies that failed alone with a 5xx, so far. */
  suspects: { study: PreparedStudy; error: FhirSinkError }[];
  /** Set once the server is taken for down; the rest of the batch is not sent. */
  down?: FhirSinkError;
  probe?: Promise<boolean>;
}

export class FhirSink implements Sink {
  readonly name = FHIR_SINK_NAME;
  readonly config: FhirSinkConfig;
  private readonly http: FhirHttpClient;
  private readonly logger: Logger;
  private readonly lookup: PatientLookup;
  private readonly patientGuard?: FhirSinkDeps['patientGuard'];
  private capability?: Promise<CapabilitySummary>;
  private readonly endpoints = new Map<string, EndpointState>();
  private readonly endpointPending = new Map<string, Promise<EndpointState>>();
  /** Last version this sink wrote per study, for If-Match. */
  private readonly versions = new Map<string, string>();
  private readonly counts = {
    transactions: 0,
    splits: 0,
    written: 0,
    failed: 0,
    fallbacks: 0,
    links: {} as Record<string, number>,
  };

  constructor(config: FhirSinkConfig, deps: FhirSinkDeps = {}) {
    this.config = config;
    this.logger = (deps.logger ?? silentLogger).child({ sink: FHIR_SINK_NAME });
    this.http = new FhirHttpClient(config, this.logger, deps.metrics);
    this.lookup = new PatientLookup(this.http, config.patientLinking.cacheTtlSeconds);
    this.patientGuard = deps.patientGuard;
  }

  /**
   * Start-up check: GET [base]/metadata must declare FHIR 4.0.x and transactions. Call it at start-up
   * to stop with a clear message; writeBatch also runs it once before the first write.
   */
  check(): Promise<CapabilitySummary> {
    this.capability ??= this.fetchCapability().catch((err) => {
      this.capability = undefined; // a server that was down may come up: check again next time
      throw err;
    });
    return this.capability;
  }

  private async fetchCapability(): Promise<CapabilitySummary> {
    let res;
    try {
      res = await this.http.send({ kind: 'metadata', method: 'GET', url: 'metadata' });
    } catch (err) {
      const e = err as FhirSinkError;
      throw new FhirSinkError(
        `FHIR server ${this.config.baseUrl}: GET metadata failed — ${e.message}`,
        e.kind ?? 'network',
        e.retryable ?? true,
        e.status,
      );
    }
    const { summary, problems } = capabilityProblems(res.data, this.config.writeMode);
    if (problems.length || !summary) {
      throw new FhirSinkError(
        `FHIR server ${this.config.baseUrl} cannot be used: ${problems.join('; ')}`,
        'capability',
        false,
      );
    }
    this.logger.info({ fhirVersion: summary.fhirVersion, software: summary.software }, 'FHIR server checked');
    return summary;
  }

  linkingFor(sourceId: string): PatientLinking {
    return { ...this.config.patientLinking, ...this.config.patientLinkingBySource[sourceId] };
  }

  async writeBatch(writes: StudyWrite[]): Promise<WriteOutcome[]> {
    if (writes.length === 0) return [];
    const outcomes = new Map<string, WriteOutcome>();
    const fail = failureRecorder(outcomes);
    try {
      await this.check();
    } catch (err) {
      const e = err as FhirSinkError;
      writes.forEach((w) => fail(w, e.message, true, isOutage(e))); // nothing written: retry once the server is fixed
      return this.collect(writes, outcomes);
    }

    // A study given twice in one batch is written once, with its last content.
    const unique = [...new Map(writes.map((w) => [writeKey(w), w])).values()];
    const endpointRefs = await this.endpointRefs(unique, fail);
    const ready = unique.filter((w) => sourcesOf(w).every((id) => endpointRefs.has(id)));
    const lookups = await this.patientLookups(ready, fail);
    const prepared = this.prepareAll(ready, { outcomes, fail, endpointRefs, lookups });

    const health: BatchHealth = { written: 0, suspects: [] };
    for (const chunk of this.chunks(prepared)) await this.writeChunk(chunk, outcomes, health);
    this.settleSuspects(health, outcomes);

    const result = this.collect(writes, outcomes);
    const failed = result.filter((o) => !o.ok).length;
    this.logger.info({ studies: writes.length, written: result.length - failed, failed }, 'FHIR batch written');
    return result;
  }

  /**
   * Each source's Endpoint (the writes' own and those of the other sources holding their studies), created or
   * updated once per batch; the studies whose Endpoints fail, fail.
   */
  private async endpointRefs(unique: StudyWrite[], fail: FailStudy): Promise<Map<string, string>> {
    const endpointRefs = new Map<string, string>();
    const endpoints = new Map<string, Endpoint>();
    for (const w of unique)
      for (const { sourceId, endpoint } of [{ sourceId: w.sourceId, endpoint: w.endpoint }, ...(w.alsoHeldBy ?? [])])
        if (!endpoints.has(sourceId)) endpoints.set(sourceId, endpoint);
    for (const [sourceId, endpoint] of endpoints) {
      try {
        endpointRefs.set(sourceId, (await this.ensureEndpoint(sourceId, endpoint)).reference);
      } catch (err) {
        const e = err as FhirSinkError;
        unique
          .filter((w) => sourcesOf(w).includes(sourceId))
          .forEach((w) => fail(w, `Endpoint for source ${sourceId}: ${e.message}`, e.retryable ?? true, isOutage(e)));
      }
    }
    return endpointRefs;
  }

  /** Patients found by identifier for the studies whose source links in `lookup` mode, in one search. */
  private async patientLookups(ready: StudyWrite[], fail: FailStudy): Promise<Map<string, string[]>> {
    const toLookUp = ready.filter((w) => this.linkingFor(w.sourceId).mode === 'lookup');
    try {
      return await this.lookup.resolve(toLookUp.flatMap((w) => patientIdentifier(w) ?? []) as Identifier[]);
    } catch (err) {
      const e = err as FhirSinkError;
      toLookUp.forEach((w) => fail(w, `Patient lookup: ${e.message}`, e.retryable ?? true, isOutage(e)));
      return new Map();
    }
  }

  /** The studies not failed yet, with their patient link planned and resources ready to send. */
  private prepareAll(
    ready: StudyWrite[],
    o: {
      outcomes: Map<string, WriteOutcome>;
      fail: FailStudy;
      endpointRefs: Map<string, string>;
      lookups: Map<string, string[]>;
    },
  ): PreparedStudy[] {
    const prepared: PreparedStudy[] = [];
    for (const w of ready) {
      if (o.outcomes.has(writeKey(w))) continue;
      const plan = planPatientLink(w, this.linkingFor(w.sourceId), this.config.ownerTag, o.lookups);
      if (plan.kind === 'fail') {
        o.fail(w, plan.reason, plan.retryable);
        continue;
      }
      // A Patient to create is checked like the ImagingStudy: an invalid one fails its study (recorded, retried).
      const invalid = plan.kind === 'create' ? this.patientGuard?.(plan.patient) : undefined;
      if (invalid) {
        const profile = this.linkingFor(w.sourceId).patientProfile.replace(/^.*\//, '');
        o.fail(w, `patient guard: the Patient to create fails ${profile}: ${invalid}`, true);
        continue;
      }
      prepared.push(
        prepareStudy(w, {
          writeMode: this.config.writeMode,
          endpointRef: o.endpointRefs.get(w.sourceId)!,
          otherEndpointRefs: otherEndpointRefs(w, o.endpointRefs),
          ownerTag: this.config.ownerTag,
          plan,
          knownVersion: this.config.useIfMatch ? this.versions.get(w.studyUid) : undefined,
        }),
      );
    }
    return prepared;
  }

  private collect(writes: StudyWrite[], outcomes: Map<string, WriteOutcome>): WriteOutcome[] {
    return writes.map(
      (w) =>
        outcomes.get(writeKey(w)) ?? {
          studyUid: w.studyUid,
          ok: false,
          error: 'not written (internal error)',
          retryable: true,
        },
    );
  }

  /** Groups of at most batchSize studies and maxEntriesPerTransaction entries. */
  private chunks(studies: PreparedStudy[]): PreparedStudy[][] {
    const out: PreparedStudy[][] = [];
    let current: PreparedStudy[] = [];
    for (const s of studies) {
      const next = [...current, s];
      if (
        current.length &&
        (next.length > this.config.batchSize || entryCount(next) > this.config.maxEntriesPerTransaction)
      ) {
        out.push(current);
        current = [s];
      } else current = next;
    }
    if (current.length) out.push(current);
    return out;
  }

  /**
   * Writes one transaction. Once the server is found down (`health.down`) the rest of the batch is
   * marked unavailable untried; a rejection one bad study can cause is halved until it stands alone.
   */
  private async writeChunk(
    chunk: PreparedStudy[],
    outcomes: Map<string, WriteOutcome>,
    health: BatchHealth,
    retries?: number,
  ): Promise<void> {
    if (health.down) return this.markUnavailable(chunk, health.down, outcomes);
    const { bundle, studyEntry } = buildTransaction(chunk);
    this.counts.transactions++;
    let response: Bundle;
    try {
      const spec = { kind: 'transaction' as const, method: 'POST' as const, url: '', data: bundle, retries };
      response = (await this.http.send<Bundle>(spec)).data;
    } catch (err) {
      const e = err instanceof FhirSinkError ? err : new FhirSinkError((err as Error).message, 'network', true);
      return this.transactionFailed(chunk, e, { outcomes, health, retries });
    }
    health.written += chunk.length;
    chunk.forEach((s, i) => this.recordEntry(s, response.entry?.[studyEntry[i]], outcomes));
  }

  /** A transaction refused or unanswered: the server is down, a bad study is to be isolated, or the chunk fails. */
  private async transactionFailed(
    chunk: PreparedStudy[],
    e: FhirSinkError,
    o: { outcomes: Map<string, WriteOutcome>; health: BatchHealth; retries?: number },
  ): Promise<void> {
    const { outcomes, health } = o;
    // 502/503/504 say the server (or its gateway) is unavailable; another 5xx may come from what was sent.
    const serverError = e.kind === 'http' && (e.status ?? 0) >= 500 && ![502, 503, 504].includes(e.status!);
    if (isOutage(e) && (!serverError || !(await this.answersHealthProbe(health)))) {
      health.down = e;
      return this.markUnavailable(chunk, e, outcomes);
    }
    if ((splittable(e) || serverError) && chunk.length > 1) {
      // One bad study rejects the whole transaction (a 4xx, or a 5xx from a server that answers
      // otherwise): halve until it stands alone. The halves were retried in the whole already.
      this.counts.splits++;
      const mid = Math.ceil(chunk.length / 2);
      await this.writeChunk(chunk.slice(0, mid), outcomes, health, serverError ? 0 : o.retries);
      await this.writeChunk(chunk.slice(mid), outcomes, health, serverError ? 0 : o.retries);
      return;
    }
    if (serverError) health.suspects.push({ study: chunk[0]!, error: e });
    if (health.suspects.length >= SUSPECTS_FOR_OUTAGE && health.written === 0) health.down = e;
    for (const s of chunk) {
      // After a version conflict, forget the version: the next attempt writes over what is there now.
      if (e.status === 409 || e.status === 412) this.versions.delete(s.write.studyUid);
      outcomes.set(writeKey(s.write), {
        studyUid: s.write.studyUid,
        ok: false,
        error: e.message,
        retryable: e.retryable,
      });
      this.counts.failed++;
    }
    if (e.kind === 'auth') this.logger.error({ status: e.status }, e.message);
  }

  /** One study's entry of a transaction response: written (its version remembered) or refused. */
  private recordEntry(s: PreparedStudy, entry: BundleEntry | undefined, outcomes: Map<string, WriteOutcome>): void {
    const status = parseInt(entry?.response?.status ?? '', 10);
    if (status >= 400) {
      const text = isOperationOutcome(entry?.response?.outcome)
        ? operationOutcomeText(entry!.response!.outcome!)
        : `status ${status}`;
      outcomes.set(writeKey(s.write), { studyUid: s.write.studyUid, ok: false, error: text, retryable: status >= 500 });
      this.counts.failed++;
      return;
    }
    const identity = writtenIdentity(entry, 'ImagingStudy');
    if (identity?.versionId) this.versions.set(s.write.studyUid, identity.versionId);
    outcomes.set(writeKey(s.write), {
      studyUid: s.write.studyUid,
      ok: true,
      resourceId: identity?.id ?? s.resource.id ?? '',
      versionId: identity?.versionId,
      patientLink: s.note,
    });
    this.counts.written++;
    this.counts.links[s.note.mode] = (this.counts.links[s.note.mode] ?? 0) + 1;
    if (s.note.fallbackReason) this.counts.fallbacks++;
  }

  /**
   * After a 5xx to a transaction: does the server answer GET metadata (once per batch, no retries)?
   * If not, it is down. If it does, the 5xx may have come from what was sent: the batch is split.
   */
  private async answersHealthProbe(health: BatchHealth): Promise<boolean> {
    health.probe ??= this.http
      .send({ kind: 'metadata', method: 'GET', url: 'metadata', retries: 0 })
      .then(() => true)
      .catch(() => false);
    return health.probe;
  }

  /**
   * Studies that failed alone with a 5xx are their own fault only if the server wrote others in the
   * same batch; when it wrote none, its write path is down (metadata answering or not): an outage.
   */
  private settleSuspects(health: BatchHealth, outcomes: Map<string, WriteOutcome>): void {
    if (health.written > 0 || health.suspects.length < SUSPECTS_FOR_OUTAGE) return;
    for (const { study, error } of health.suspects) this.markUnavailable([study], error, outcomes);
  }

  private markUnavailable(chunk: PreparedStudy[], e: FhirSinkError, outcomes: Map<string, WriteOutcome>): void {
    for (const s of chunk) {
      const error = `FHIR server unavailable: ${e.message}`;
      outcomes.set(writeKey(s.write), {
        studyUid: s.write.studyUid,
        ok: false,
        error,
        retryable: true,
        unavailable: true,
      });
    }
  }

  /** Writes the source's Endpoint once (again only if its content changes); returns its reference. */
  private ensureEndpoint(sourceId: string, endpoint: Endpoint): Promise<EndpointState> {
    const identifier = endpointIdentifier(endpoint, sourceId, this.config.endpointIdentifierSystem);
    const { meta, ...rest } = withTag(endpoint, this.config.ownerTag);
    const resource: Endpoint = {
      ...rest,
      meta: { ...(meta?.profile ? { profile: meta.profile } : {}), tag: meta?.tag },
      identifier: endpoint.identifier?.some((i) => i.system === identifier.system && i.value === identifier.value)
        ? endpoint.identifier
        : [identifier, ...(endpoint.identifier ?? [])],
    };
    const contentKey = JSON.stringify(resource);
    const known = this.endpoints.get(sourceId);
    if (known?.contentKey === contentKey) return Promise.resolve(known);
    const pendingKey = `${sourceId}\u0000${contentKey}`;
    let pending = this.endpointPending.get(pendingKey);
    if (!pending) {
      pending = this.putEndpoint(resource, identifier, contentKey)
        .then((state) => {
          this.endpoints.set(sourceId, state);
          return state;
        })
        .finally(() => this.endpointPending.delete(pendingKey));
      this.endpointPending.set(pendingKey, pending);
    }
    return pending;
  }

  private async putEndpoint(
    resource: Endpoint,
    identifier: { system: string; value: string },
    contentKey: string,
  ): Promise<EndpointState> {
    const body = { ...resource };
    let url: string;
    if (this.config.writeMode === 'conditional') {
      delete body.id;
      url = `Endpoint?identifier=${tokenParam(identifier.system, identifier.value)}`;
    } else {
      body.id = resource.id ?? `pacs-${identifier.value}`;
      url = `Endpoint/${body.id}`;
    }
    // No If-Match: the Endpoint belongs to this bridge's configuration, the configured one wins.
    const res = await this.http.send<Endpoint>({ kind: 'endpoint', method: 'PUT', url, data: body });
    const location =
      (res.headers['location'] as string | undefined) ?? (res.headers['content-location'] as string | undefined);
    const id = res.data?.id ?? /Endpoint\/([^/]+)/.exec(location ?? '')?.[1] ?? body.id;
    if (!id) throw new FhirSinkError('the server did not say which id the Endpoint got', 'http', true);
    return { reference: `Endpoint/${id}`, contentKey };
  }

  /** Marks (entered-in-error) or deletes a study this bridge wrote; resources without the owner tag are left alone. */
  async removeStudy(sourceId: string, studyUid: string, action: 'entered-in-error' | 'delete'): Promise<void> {
    const tag = this.config.ownerTag;
    const res = await this.http.send<Bundle>({
      kind: 'read',
      method: 'GET',
      url: `ImagingStudy?${studyCriteria(studyUid)}&_tag=${tokenParam(tag.system, tag.code)}`,
    });
    const found = (res.data.entry ?? [])
      .map((e) => e.resource)
      .filter((r): r is ImagingStudy => r?.resourceType === 'ImagingStudy');
    this.versions.delete(studyUid);
    for (const study of found) {
      // The server ignored _tag.
      if (!study.meta?.tag?.some((t) => t.system === tag.system && t.code === tag.code)) continue;
      if (action === 'delete') {
        await this.http.send({ kind: 'delete', method: 'DELETE', url: `ImagingStudy/${study.id}` });
      } else if (study.status !== 'entered-in-error') {
        const ifMatch = study.meta?.versionId ? { 'If-Match': `W/"${study.meta.versionId}"` } : undefined;
        await this.http.send({
          kind: 'update',
          method: 'PUT',
          url: `ImagingStudy/${study.id}`,
          data: { ...study, status: 'entered-in-error' },
          headers: ifMatch,
        });
      }
    }
    this.logger.info({ sourceId, studyUid, action, matched: found.length }, 'FHIR study removal');
  }

  stats(): FhirSinkStats {
    const total = this.http.totalRequests;
    return {
      requests: { total, byKind: { ...this.http.counters.byKind } },
      tokenRequests: this.http.tokenRequests,
      retries: this.http.counters.retries,
      authRetries: this.http.counters.authRetries,
      transactions: this.counts.transactions,
      splits: this.counts.splits,
      studiesWritten: this.counts.written,
      studiesFailed: this.counts.failed,
      requestsPerStudy: this.counts.written ? total / this.counts.written : undefined,
      patientLinks: { ...this.counts.links },
      fallbacks: this.counts.fallbacks,
    };
  }
}

/** Builds the sink from raw (unvalidated) or validated configuration. */
export function createFhirSink(config: FhirSinkInput, deps: FhirSinkDeps = {}): FhirSink {
  return new FhirSink(fhirSinkSchema.parse(config), deps);
}

type FailStudy = (w: StudyWrite, error: string, retryable: boolean, unavailable?: boolean) => void;

/** Records a study's failure in a batch's outcomes. */
function failureRecorder(outcomes: Map<string, WriteOutcome>): FailStudy {
  return (w, error, retryable, unavailable = false) =>
    outcomes.set(writeKey(w), {
      studyUid: w.studyUid,
      ok: false,
      error,
      retryable,
      ...(unavailable && { unavailable }),
    });
}

/** The sources whose Endpoints a write references: its own, then the others holding the study. */
function sourcesOf(w: StudyWrite): string[] {
  return [w.sourceId, ...(w.alsoHeldBy ?? []).map((h) => h.sourceId)];
}

/** The mapper's reference of each other holder's Endpoint → its reference on the server. */
function otherEndpointRefs(w: StudyWrite, refs: Map<string, string>): Map<string, string> | undefined {
  if (!w.alsoHeldBy?.length) return undefined;
  return new Map(w.alsoHeldBy.map((h) => [`Endpoint/${h.endpoint.id}`, refs.get(h.sourceId)!]));
}
