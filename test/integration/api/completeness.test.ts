/**
 * Complete, exact live answers against a real Orthanc: live pages fill (modality is filtered before a page is counted),
 * `total` and `next` are exact and agree with `_summary=count`, live and store order alike; the PACS
 * is only asked exact identifying values (recording proxy), and what cannot be sent exactly or is not
 * UTF-8 is a 400; failed authentication is throttled; patient context is refused; and the FHIR
 * conventions (406 for XML, SMART rest.security, ETag/304, exposed headers, OperationOutcomes for
 * unparsable requests, client address in audit lines). Bundles and the CapabilityStatement validate.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import express from 'express';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import type { Bundle, CapabilityStatement } from 'fhir/r4';
import { isBlocking, validateAny } from '../../../src/mapping/validate';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService } from '../../../src/sync';
import {
  generateCorpus,
  loadStudies,
  makeSeries,
  makeStudy,
  modalitiesInStudy,
  type SyntheticStudy,
} from '../../fixtures/synthetic';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { startRecordingProxy, type RecordingProxy } from '../../harness/recordingProxy';
import { allPages, apiSource, matchIds, serveApi, sourceConfig, uidsOf, type ServedApi } from './helpers';

const run = promisify(execFile);
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const PID = 'PCTX-1';

let orthanc: OrthancServer;
let proxy: RecordingProxy;
let corpus: SyntheticStudy[];
let live: ServedApi;
let fromStore: ServedApi;
let store: SqliteStateStore;
let tmp: string;

const apiBase = { auth: { type: 'none' as const }, patientIdRule: {}, maxCount: 50, rateLimit: { enabled: false } };
/** Small PACS pages, so listing a search's candidates takes several QIDO pages. */
const cfg = () => sourceConfig('a', proxy.via(orthanc.dicomWebBase), { pageSize: 4 });

const inJan2024 = (s: SyntheticStudy) => !!s.studyDate && s.studyDate >= '20240101' && s.studyDate < '20240201';
const hasModality = (m: string) => (s: SyntheticStudy) => modalitiesInStudy(s).includes(m as never);

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'api-complete-'));
  orthanc = await startOrthanc();
  proxy = await startRecordingProxy(orthanc.dicomWebBase);
  const day = (i: number) => `202401${String(2 + i).padStart(2, '0')}`;
  corpus = [
    ...generateCorpus({ seed: 151, studies: 18, days: { from: '20240101', count: 9 }, undated: 0 }),
    // The patient of the issue: five CTs among other studies.
    ...[0, 1, 2, 3, 4].map((i) =>
      makeStudy({ patient: { id: PID, alphabetic: 'Ko^Wen' }, accession: `CTX-${i}`, studyDate: day(i) }),
    ),
    ...[5, 6].map((i) =>
      makeStudy({
        patient: { id: PID, alphabetic: 'Ko^Wen' },
        accession: `MRX-${i}`,
        studyDate: day(i),
        series: [makeSeries({ modality: 'MR', instances: 1 })],
      }),
    ),
    // Other patients' CTs interleaved, so a patient-less modality search spans pages.
    ...[0, 2, 4, 6].map((i) => makeStudy({ patient: { id: `OTHER-${i}` }, accession: `OTH-${i}`, studyDate: day(i) })),
  ];
  await loadStudies(orthanc, corpus);
  live = await serveApi({ config: { ...apiBase, cache: { enabled: false } }, sources: [apiSource(cfg())] });

  store = openSqliteStore(path.join(tmp, 'store.db'));
  const sync = createSyncService({
    config: { sources: [sourceConfig('a', orthanc.dicomWebBase)], sync: { lookbackDays: 1 } },
    store,
    sinks: [createEmbeddedSink(store)],
  });
  expect((await sync.backfill('a', '20240101', '20240131')).status).toBe('ok');
  fromStore = await serveApi({
    config: { ...apiBase, mode: 'store', storeFallback: false },
    sources: [apiSource(sourceConfig('a', orthanc.dicomWebBase))],
    store: store.resources,
  });
});

afterAll(async () => {
  await live?.close();
  await fromStore?.close();
  store?.close();
  await proxy?.stop();
  await orthanc?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const nextOf = (b: Bundle) => b.link?.find((l) => l.relation === 'next')?.url;

/** Pages at _count=3: every page but the last is full, `next` is there exactly when more follow. */
async function pagedCompletely(api: ServedApi, query: string, expected: string[]) {
  const { ids, pages } = await allPages(api.http, `/ImagingStudy?${query}&_count=3`);
  expect([...ids].sort()).toEqual([...expected].sort());
  expect(new Set(ids).size).toBe(ids.length);
  expect(pages).toHaveLength(Math.max(1, Math.ceil(expected.length / 3)));
  pages.forEach((p, i) => {
    const last = i === pages.length - 1;
    expect(matchIds(p)).toHaveLength(last ? expected.length - 3 * i : 3);
    expect(nextOf(p) !== undefined).toBe(!last);
  });
  const count = await api.http.get(`/ImagingStudy?${query}&_summary=count`);
  expect(count.data.total).toBe(expected.length);
  return { ids, pages };
}

describe('live pages fill, with total and next links that agree with _summary=count', () => {
  it("a patient's CTs at _count=3: all five, in two pages", async () => {
    const expected = uidsOf(corpus.filter((s) => s.patient.id === PID).filter(hasModality('CT')));
    expect(expected).toHaveLength(5);
    const { pages } = await pagedCompletely(live, `patient:identifier=${PID}&modality=CT`, expected);
    // Listed whole, so the live answer knows its total too.
    for (const p of pages) expect(p.total).toBe(5);
  });

  it('a date range with each modality at _count=3 returns every study, live and from the store', async () => {
    for (const m of ['CT', 'MR', 'US']) {
      const expected = uidsOf(corpus.filter(inJan2024).filter(hasModality(m)));
      const q = `started=ge2024-01-01&started=lt2024-02-01&modality=${m}`;
      const a = await pagedCompletely(live, q, expected);
      const b = await pagedCompletely(fromStore, q, expected);
      for (const p of b.pages) expect(p.total).toBe(expected.length);
      // The same order in both modes (Study Instance UID order).
      expect(a.ids).toEqual(b.ids);
      expect(a.ids).toEqual([...a.ids].sort());
    }
  });

  it('a source too large to list whole is read in PACS order: still every study, no total', async () => {
    const big = await serveApi({
      config: { ...apiBase, maxCountScan: 6, cache: { enabled: false } },
      sources: [apiSource(cfg())],
    });
    try {
      const expected = uidsOf(corpus.filter(inJan2024).filter(hasModality('CT')));
      const { ids, pages } = await allPages(
        big.http,
        '/ImagingStudy?started=ge2024-01-01&started=lt2024-02-01&modality=CT&_count=3',
      );
      expect([...ids].sort()).toEqual(expected);
      for (const p of pages) {
        expect(p.total).toBeUndefined();
        expect(matchIds(p).length).toBeLessThanOrEqual(3);
      }
      expect(
        (await big.http.get('/ImagingStudy?started=ge2024-01-01&started=lt2024-02-01&_summary=count')).status,
      ).toBe(400);
    } finally {
      await big.close();
    }
  });

  it('fhir-kit-client following next links gets every study', async () => {
    const expected = uidsOf(corpus.filter((s) => s.patient.id === PID).filter(hasModality('CT')));
    const script = path.join(__dirname, 'fhirKitPaging.mjs');
    const { stdout } = await run(process.execPath, [script, live.base, `patient=${PID}&modality=CT&_count=3`]);
    const got = JSON.parse(stdout) as { ids: string[]; pages: number };
    expect(got.ids.sort()).toEqual(expected);
    expect(got.pages).toBe(2);
  });

  it('searchset Bundles with total validate against R4', async () => {
    for (const api of [live, fromStore]) {
      const b = (await api.http.get(`/ImagingStudy?patient=${PID}&modality=CT&_count=3&_include=ImagingStudy:endpoint`))
        .data as Bundle;
      expect(b.total).toBe(5);
      expect(validateAny(b).filter(isBlocking)).toEqual([]);
    }
  });
});

describe('the PACS is asked exact values only', () => {
  const studyQueries = () => proxy.requests.filter((r) => r.level === 'studies').map((r) => r.url);

  it("every PACS query of a patient-restricted search (study, series, instance) carries the patient's exact ID", async () => {
    // Instance lists in searches too, so instance-level queries are recorded (UID lists on, so no probe there).
    const withInstances = await serveApi({
      config: { ...apiBase, cache: { enabled: false }, searchInstances: true },
      sources: [apiSource(sourceConfig('a', proxy.via(orthanc.dicomWebBase), { pageSize: 4, uidListMatching: 'on' }))],
    });
    // A fresh API whose first search also probes UID-list matching: that probe is recorded and checked too.
    const fresh = await serveApi({ config: { ...apiBase, cache: { enabled: false } }, sources: [apiSource(cfg())] });
    try {
      proxy.reset();
      for (const api of [fresh, withInstances])
        for (const q of [
          `patient=${PID}&modality=CT&_count=2`,
          `patient:identifier=${PID}&started=ge2024-01-03`,
          `subject.identifier=${PID}&modality=MR&_summary=count`,
          `patient=${PID}&_count=1`,
        ]) {
          const { ids } = await allPages(api.http, `/ImagingStudy?${q}`);
          if (!q.includes('_summary')) expect(ids.length).toBeGreaterThan(0);
        }
    } finally {
      await Promise.all([withInstances.close(), fresh.close()]);
    }
    const requests = proxy.requests;
    const byLevel = proxy.counts();
    expect(byLevel.studies).toBeGreaterThan(2);
    expect(byLevel.series).toBeGreaterThan(1);
    expect(byLevel.instances).toBeGreaterThan(1);
    const own = new Set(corpus.filter((s) => s.patient.id === PID).map((s) => s.studyUid));
    for (const r of requests) {
      const query = new URLSearchParams(r.url.split('?')[1] ?? '');
      expect([r.url, query.get('00100020')]).toEqual([r.url, PID]);
      for (const [, v] of query) expect([r.url, v]).not.toEqual([r.url, '*']);
      if (r.level === 'studies') continue;
      // Detail queries name only studies of that patient: batched (UID list) or per study (/studies/{uid}/...).
      const inPath = /\/studies\/([0-9.]+)\//.exec(r.url)?.[1];
      const uids = inPath ? [inPath] : query.get('0020000D')!.split(',');
      for (const u of uids) expect(own.has(u)).toBe(true);
    }
    // Orthanc 1.10 honours PatientID on /series and /instances: another patient's ID finds nothing there.
    const [uid] = own;
    for (const level of ['series', 'instances']) {
      const res = await fetch(`${orthanc.dicomWebBase}/${level}?0020000D=${uid}&00100020=OTHER-0`);
      expect(res.status === 204 ? [] : await res.json()).toEqual([]);
      const right = await fetch(`${orthanc.dicomWebBase}/${level}?0020000D=${uid}&00100020=${PID}`);
      expect(((await right.json()) as unknown[]).length).toBeGreaterThan(0);
    }
  });

  it('values that cannot be sent exactly are refused with a 400 naming the parameter, before any PACS request', async () => {
    const before = proxy.requests.length;
    for (const [q, param] of [
      ['patient:identifier=%E9%99%B3', 'patient:identifier'],
      ['patient:identifier=VICTI%2599', 'patient:identifier'],
      ['identifier=VACC00%25', 'identifier'],
      ['patient=A%20B&started=ge2024-01-01', 'patient'],
    ]) {
      const res = await live.http.get(`/ImagingStudy?${q}`);
      expect(res.status).toBe(400);
      expect(res.data.resourceType).toBe('OperationOutcome');
      expect(res.data.issue[0].expression).toEqual([param]);
      expect(res.data.issue[0].diagnostics).toMatch(/exactly|not a valid/);
    }
    expect(proxy.requests.length).toBe(before);
  });

  it('a PACS that percent-decodes is sent the same values exactly, percent-encoded', async () => {
    const decoding = await serveApi({
      config: { ...apiBase, cache: { enabled: false } },
      sources: [apiSource(sourceConfig('d', proxy.via(orthanc.dicomWebBase), { percentDecodesQueryValues: true }))],
    });
    try {
      proxy.reset();
      const res = await decoding.http.get('/ImagingStudy?patient:identifier=%E9%99%B3%201&identifier=VACC00%25');
      expect(res.status).toBe(200);
      const [url] = studyQueries();
      expect(url).toContain('00100020=%E9%99%B3%201');
      expect(url).toContain('00080050=VACC00%25');
    } finally {
      await decoding.close();
    }
  });

  it('invalid UTF-8 in any parameter is a 400', async () => {
    const before = proxy.requests.length;
    for (const [q, param] of [
      ['identifier=VACC%FF%FE', 'identifier'],
      ['patient:identifier=P%C0%AF00000', 'patient:identifier'],
      ['started=ge2024-01-01&modality=C%ED%A0%80', 'modality'],
    ]) {
      const res = await live.http.get(`/ImagingStudy?${q}`);
      expect(res.status).toBe(400);
      expect(res.data.issue[0].expression).toEqual([param]);
      expect(res.data.issue[0].diagnostics).toMatch(/UTF-8/);
    }
    expect(proxy.requests.length).toBe(before);
  });

  it('no search in this file sent a bare wildcard or widened an identifier', async () => {
    // Checked over everything recorded since the last reset (the percent-decoding test's queries).
    for (const r of proxy.requests) {
      const q = new URLSearchParams(r.url.split('?')[1] ?? '');
      for (const [k, v] of q) {
        expect(v).not.toMatch(/^\*+$/);
        if (['00100020', '00080050', '00200010', '0020000D', '0020000E'].includes(k)) expect(v).not.toMatch(/[*?]/);
      }
    }
  });
});

describe('failed authentication is throttled per address', () => {
  it('beyond the limit: 429 with Retry-After, before the key is checked; successes do not count', async () => {
    const api = await serveApi({
      config: {
        auth: { type: 'apiKey', keys: [{ client: 'viewer', sha256: sha('good-key-12345') }] },
        rateLimit: { max: 1000, maxAuthFailures: 5 },
      },
      sources: [apiSource(cfg())],
    });
    try {
      const get = (key: string) => api.http.get('/Endpoint', { headers: { 'X-API-Key': key } });
      for (let i = 0; i < 8; i++) expect((await get('good-key-12345')).status).toBe(200);
      for (let i = 0; i < 5; i++) expect((await get(`guess-${i}`)).status).toBe(401);
      const over = await get('guess-6');
      expect(over.status).toBe(429);
      expect(Number(over.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(over.data.issue[0].code).toBe('throttled');
      // The address is throttled, whatever it sends next.
      expect((await get('good-key-12345')).status).toBe(429);
    } finally {
      await api.close();
    }
  });
});

describe('patient context (refused) and SMART discovery', () => {
  let jwksServer: Server;
  let privateKey: KeyLike;
  let api: ServedApi;
  const issuer = 'https://auth.hospital.example';
  const audience = 'pacs-fhir-bridge';
  const tokenUrl = 'https://auth.hospital.example/token';
  const token = (claims: Record<string, unknown>) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    privateKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const jwksApp = express();
    jwksApp.get('/jwks', (_req, res) => void res.json({ keys: [jwk] }));
    jwksServer = await new Promise((r) => {
      const s = jwksApp.listen(0, '127.0.0.1', () => r(s));
    });
    const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
    api = await serveApi({
      config: { ...apiBase, auth: { type: 'jwt', jwksUrl, issuer, audience, tokenUrl } },
      sources: [apiSource(cfg())],
    });
  });
  afterAll(async () => {
    await api?.close();
    await new Promise<void>((r) => jwksServer.close(() => r()));
  });

  it('user/ and patient/ scopes with a patient claim get 403 for searches and reads; without one, user/ is served', async () => {
    const study = corpus.find((s) => s.patient.id === PID)!;
    const as = async (claims: Record<string, unknown>, url: string) =>
      (await api.http.get(url, { headers: { Authorization: `Bearer ${await token(claims)}` } })).status;
    for (const url of [`/ImagingStudy?patient=${PID}`, `/ImagingStudy/${study.studyUid}`]) {
      expect(await as({ scope: 'user/ImagingStudy.read', patient: PID }, url)).toBe(403);
      expect(await as({ scope: 'patient/ImagingStudy.read', patient: PID }, url)).toBe(403);
      expect(await as({ scope: 'user/ImagingStudy.read' }, url)).toBe(200);
      expect(await as({ scope: 'system/ImagingStudy.read' }, url)).toBe(200);
    }
    const res = await api.http.get(`/ImagingStudy?patient=${PID}`, {
      headers: { Authorization: `Bearer ${await token({ scope: 'user/ImagingStudy.read', patient: 'other' })}` },
    });
    expect(res.data.issue[0].diagnostics).toMatch(/patient context/);
  });

  it('the CapabilityStatement advertises SMART with the token endpoint, and validates', async () => {
    const cap = (await api.http.get('/metadata')).data as CapabilityStatement;
    const security = cap.rest![0].security!;
    expect(security.service![0].coding![0]).toMatchObject({
      system: 'http://terminology.hl7.org/CodeSystem/restful-security-service',
      code: 'SMART-on-FHIR',
    });
    expect(security.extension).toEqual([
      {
        url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
        extension: [{ url: 'token', valueUri: tokenUrl }],
      },
    ]);
    expect(validateAny(cap).filter(isBlocking)).toEqual([]);
    expect(validateAny((await fromStore.http.get('/metadata')).data).filter(isBlocking)).toEqual([]);
  });
});

describe('FHIR conventions', () => {
  it('XML is answered 406, by _format or by Accept; JSON is served', async () => {
    const q = `/ImagingStudy?patient=${PID}`;
    for (const res of [
      await live.http.get(`${q}&_format=xml`),
      await live.http.get(`${q}&_format=application/fhir%2Bxml`),
      await live.http.get(q, { headers: { Accept: 'application/fhir+xml' } }),
      await live.http.get('/metadata?_format=xml'),
    ]) {
      expect(res.status).toBe(406);
      expect(res.data.resourceType).toBe('OperationOutcome');
    }
    expect((await live.http.get(`${q}&_format=json`)).status).toBe(200);
    expect((await live.http.get(q, { headers: { Accept: 'application/fhir+json' } })).status).toBe(200);
    expect((await live.http.get(q, { headers: { Accept: '*/*' } })).status).toBe(200);
  });

  it('store-mode reads carry ETag and meta.versionId; If-None-Match gives 304', async () => {
    const uid = corpus[0].studyUid;
    const first = await fromStore.http.get(`/ImagingStudy/${uid}`);
    expect(first.status).toBe(200);
    const version = first.data.meta.versionId;
    expect(version).toMatch(/^\S+$/);
    expect(first.headers.etag).toBe(`W/"${version}"`);
    const again = await fromStore.http.get(`/ImagingStudy/${uid}`, {
      headers: { 'If-None-Match': first.headers.etag },
    });
    expect(again.status).toBe(304);
    expect(again.data).toBe('');
    expect(
      (await fromStore.http.get(`/ImagingStudy/${uid}`, { headers: { 'If-None-Match': 'W/"other"' } })).status,
    ).toBe(200);
  });

  it('CORS exposes ETag, Location and the rate-limit headers', async () => {
    const api = await serveApi({
      config: { ...apiBase, cors: { enabled: true, origins: ['https://viewer.example'] } },
      sources: [apiSource(cfg())],
    });
    try {
      const res = await api.http.get('/metadata', { headers: { Origin: 'https://viewer.example' } });
      const exposed = String(res.headers['access-control-expose-headers']).split(',');
      for (const h of ['ETag', 'Location', 'RateLimit', 'RateLimit-Policy', 'Retry-After'])
        expect(exposed).toContain(h);
    } finally {
      await api.close();
    }
  });

  it('unparsable requests and oversized headers get OperationOutcomes', async () => {
    const port = Number(new URL(live.base).port);
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
        let data = '';
        socket.on('data', (d) => (data += d));
        socket.on('end', () => resolve(data));
        socket.on('error', reject);
      });
    const bad = await raw('GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nNot a header\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(bad.split('\r\n\r\n')[1]).resourceType).toBe('OperationOutcome');
    const big = await raw(`GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(big.split('\r\n\r\n')[1]).issue[0].diagnostics).toMatch(/too large/);
    // A malformed percent-escape in a read's path reaches Express: an OperationOutcome too.
    const res = await live.http.get('/ImagingStudy/%E0%A4%A');
    expect(res.status).toBe(400);
    expect(res.data.resourceType).toBe('OperationOutcome');
  });

  it('audit lines carry the client address', async () => {
    const n = live.auditLines.length;
    await live.http.get('/Endpoint');
    const line = live.auditLines.slice(n).find((l) => l.resourceType === 'Endpoint')!;
    expect(String(line.address)).toMatch(/127\.0\.0\.1$/);
  });
});
