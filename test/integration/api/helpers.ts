/** Shared set-up for the API integration tests: a served app, an HTTP client, PACS request counts. */
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { Writable } from 'node:stream';
import type { Bundle, ImagingStudy, Resource } from 'fhir/r4';
import {
  answerClientErrors,
  createApiApp,
  createStudyLookup,
  type ApiApp,
  type ApiSource,
  type StudyStore,
} from '../../../src/api/app';
import { parseApiConfig, type ApiConfigInput } from '../../../src/api/config';
import { sourceSchema, type SourceConfig, type SourceInput } from '../../../src/config';
import { createPacsSource, type PacsSource } from '../../../src/dicomweb';
import { createAuditLogger } from '../../../src/api/audit';
import type { SyntheticStudy } from '../../fixtures/synthetic';

export const TZ = 'Asia/Taipei';
export const ACCESSION_SYSTEM = 'urn:oid:2.16.886.101.20003.20014';
export const STUDY_ID_SYSTEM = 'urn:pacs-fhir-bridge:test:study-id';

export function sourceConfig(id: string, qidoBase: string, over: Partial<SourceInput> = {}): SourceConfig {
  return sourceSchema.parse({
    id,
    qidoBase,
    defaultTimezone: TZ,
    retries: 0,
    timeoutMs: 10000,
    mapping: { accessionSystem: ACCESSION_SYSTEM, studyIdSystem: STUDY_ID_SYSTEM },
    ...over,
  });
}

export function apiSource(cfg: SourceConfig): ApiSource {
  return { config: cfg, pacs: createPacsSource(cfg) };
}

/** PACS requests a source has made so far, all levels together. */
export function pacsRequests(...pacs: PacsSource[]): number {
  return pacs.reduce((n, p) => n + Object.values(p.stats.requests).reduce((a, b) => a + b, 0), 0);
}

export interface ServedApi {
  app: ApiApp;
  base: string;
  http: AxiosInstance;
  auditLines: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function serveApi(o: {
  config: ApiConfigInput;
  sources: ApiSource[];
  store?: StudyStore;
  headers?: Record<string, string>;
}): Promise<ServedApi> {
  const auditLines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n').filter(Boolean)) auditLines.push(JSON.parse(line));
      cb();
    },
  });
  const config = parseApiConfig(o.config);
  const lookup = createStudyLookup({ config, sources: o.sources, store: o.store });
  const app = createApiApp({ config, lookup, audit: createAuditLogger(sink) });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
    answerClientErrors(s);
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
  const http = axios.create({ baseURL: base, validateStatus: () => true, headers: o.headers });
  return {
    app,
    base,
    http,
    auditLines,
    close: async () => {
      lookup.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export function matchIds(bundle: Bundle): string[] {
  return (bundle.entry ?? [])
    .filter((e) => e.search?.mode === 'match')
    .map((e) => e.resource!.id!)
    .sort();
}

export function matches(bundle: Bundle): ImagingStudy[] {
  return (bundle.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource as ImagingStudy);
}

export function includes(bundle: Bundle): Resource[] {
  return (bundle.entry ?? []).filter((e) => e.search?.mode === 'include').map((e) => e.resource!);
}

export const uidsOf = (studies: SyntheticStudy[]) => studies.map((s) => s.studyUid).sort();

/** Follows next links from a first search, collecting every match; returns the pages too. */
export async function allPages(http: AxiosInstance, first: string): Promise<{ ids: string[]; pages: Bundle[] }> {
  const pages: Bundle[] = [];
  let url: string | undefined = first;
  while (url) {
    const res: AxiosResponse<Bundle> = await http.get(url);
    if (res.status !== 200) throw new Error(`${url} → ${res.status} ${JSON.stringify(res.data)}`);
    pages.push(res.data);
    url = res.data.link?.find((l) => l.relation === 'next')?.url;
    if (pages.length > 100) throw new Error('paging does not end');
  }
  return { ids: pages.flatMap((p) => matchIds(p)), pages };
}

/** A key's stored form: its SHA-256 in hex, as api.auth.keys holds it. */
export const sha = (s: string) => createHash('sha256').update(s).digest('hex');

export const KEY_READER = 'key-reader-0123456789';
export const KEY_ENDPOINT_ONLY = 'key-endpoint-only-987';

/** API keys for two clients: `viewer` with the default scopes, `directory` allowed Endpoint reads only. */
export const KEYED_CONFIG = {
  auth: {
    type: 'apiKey' as const,
    keys: [
      { client: 'viewer', sha256: sha(KEY_READER) },
      { client: 'directory', sha256: sha(KEY_ENDPOINT_ONLY), scopes: ['system/Endpoint.read'] },
    ],
  },
  rateLimit: { max: 1000 },
};
