/**
 * What keeps the FHIR API safe before it asks a PACS anything, with no PACS at all: bad input gets a 400; API keys
 * and JWTs (from a JWKS served here, keys made with jose) give 401/403 as they should; rate limits and CORS; a PACS
 * that is down or silent gives 502/504 without its address; the CapabilityStatement's refusals. The source points
 * at a port nothing listens on, so any request that got through would be counted (and answered 502).
 * What needs studies on a real Orthanc (caching, served searches, the audit trail) is in guardPacs.test.ts.
 */
import net, { type AddressInfo } from 'node:net';
import type { CapabilityStatement, OperationOutcome } from 'fhir/r4';
import { freePort } from '../../harness/orthanc';
import {
  apiSource,
  KEY_ENDPOINT_ONLY,
  KEY_READER,
  KEYED_CONFIG,
  pacsRequests,
  serveApi,
  sha,
  sourceConfig,
  type ServedApi,
} from './helpers';
import { startJwtIssuer, type JwtIssuer } from './jwtIssuer';
import type { ApiSource } from '../../../src/api/app';

const enc = encodeURIComponent;
/** A well-formed Study Instance UID no PACS is asked about. */
const UID = '1.2.826.0.1.3680043.8.498.12345';

let src: ApiSource;
let open: ServedApi;

beforeAll(async () => {
  src = apiSource(sourceConfig('a', `http://127.0.0.1:${await freePort()}/dicom-web`));
  open = await serveApi({
    config: { auth: { type: 'none' }, patientIdRule: {}, rateLimit: { enabled: false } },
    sources: [src],
  });
});

afterAll(async () => {
  await open?.close();
});

/** Asserts that `run` made no PACS request. */
async function noPacsRequest<T>(run: () => Promise<T>): Promise<T> {
  const before = pacsRequests(src.pacs);
  const result = await run();
  expect(pacsRequests(src.pacs)).toBe(before);
  return result;
}

describe('bad input: a 400 OperationOutcome and no PACS request', () => {
  const long = 'A'.repeat(300);
  it.each([
    ['a * wildcard', '/ImagingStudy?identifier=G-ACC*'],
    ['a ? wildcard', '/ImagingStudy?identifier=G-ACC%3F'],
    ['a * in a patient identifier', '/ImagingStudy?patient:identifier=G-PAT-%2A'],
    ['an empty value', '/ImagingStudy?identifier='],
    ['an empty patient', '/ImagingStudy?patient='],
    ['a line feed', '/ImagingStudy?identifier=G-ACC-1%0A'],
    ['a CR LF', '/ImagingStudy?patient.identifier=G-PAT-1%0D%0AX'],
    ['a backslash (DICOM multi-value)', '/ImagingStudy?identifier=G-ACC-1%5CG-ACC-2'],
    ['an overlong value', `/ImagingStudy?identifier=${long}`],
    ['non-UID characters in _id', '/ImagingStudy?_id=1.2.3a'],
    ['non-UID characters in a UID identifier', `/ImagingStudy?identifier=${enc('urn:dicom:uid|urn:oid:1.2.3;DROP')}`],
    ['non-UID characters in series', '/ImagingStudy?series=1.2.x&identifier=G-ACC-1'],
    ['a UID over 64 characters', `/ImagingStudy?_id=${'1.'.repeat(40)}1`],
    ['an invalid date', '/ImagingStudy?started=2024-02-30'],
    ['an unsupported prefix', '/ImagingStudy?started=sa2024-01-01'],
    ['_include=*', '/ImagingStudy?identifier=G-ACC-1&_include=*'],
    ['_count=-1', '/ImagingStudy?identifier=G-ACC-1&_count=-1'],
    ['an unsupported modifier', '/ImagingStudy?identifier:text=G-ACC-1'],
    ['Patient/<id> with no id rule match', '/ImagingStudy?patient=Group/7'],
    ['no restricting parameter', '/ImagingStudy?modality=CT'],
    ['no parameter at all', '/ImagingStudy'],
    ['non-UID characters in series alone', '/ImagingStudy?series=1.2.x'],
    ['a * in series alone', '/ImagingStudy?series=1.2.*'],
    ['an empty series alone', '/ImagingStudy?series='],
    ['a read of a non-UID id', '/ImagingStudy/abc'],
    ['a read with a line break', '/ImagingStudy/1.2.3%0A'],
  ])('%s', async (_what, url) => {
    const res = await noPacsRequest(() => open.http.get(url));
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/fhir\+json/);
    const oo = res.data as OperationOutcome;
    expect(oo.resourceType).toBe('OperationOutcome');
    expect(oo.issue[0].severity).toBe('error');
    expect(oo.issue[0].diagnostics!.length).toBeGreaterThan(10);
  });

  it('an unknown parameter is refused with Prefer: handling=strict', async () => {
    const strict = await noPacsRequest(() =>
      open.http.get(`/ImagingStudy?_id=${UID}&foo=bar`, { headers: { Prefer: 'handling=strict' } }),
    );
    expect(strict.status).toBe(400);
    expect(strict.data.issue[0].diagnostics).toMatch(/foo/);
  });
});

describe('PACS failures', () => {
  it('a PACS that is down gives 502 without its address', async () => {
    const port = await freePort();
    const down = apiSource(sourceConfig('down', `http://127.0.0.1:${port}/dicom-web`));
    const api = await serveApi({ config: { auth: { type: 'none' } }, sources: [down] });
    try {
      const res = await api.http.get('/ImagingStudy?identifier=G-ACC-1');
      expect(res.status).toBe(502);
      expect(res.data.resourceType).toBe('OperationOutcome');
      expect(JSON.stringify(res.data)).not.toMatch(new RegExp(`127\\.0\\.0\\.1|${port}|dicom-web`));
    } finally {
      await api.close();
    }
  });

  it('a PACS that does not answer gives 504', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((sock) => void sockets.push(sock));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as AddressInfo).port;
    const api = await serveApi({
      config: { auth: { type: 'none' } },
      sources: [apiSource(sourceConfig('slow', `http://127.0.0.1:${port}/dicom-web`, { timeoutMs: 300 }))],
    });
    try {
      const res = await api.http.get(`/ImagingStudy/${UID}`);
      expect(res.status).toBe(504);
      expect(res.data.issue[0].code).toBe('timeout');
      expect(JSON.stringify(res.data)).not.toContain(String(port));
    } finally {
      await api.close();
      sockets.forEach((s) => s.destroy());
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});

describe('access control', () => {
  let keyed: ServedApi;

  beforeAll(async () => {
    keyed = await serveApi({
      config: KEYED_CONFIG,
      sources: [src],
    });
  });
  afterAll(() => keyed.close());

  it('API keys: none or wrong → 401, wrong scope → 403, before any PACS request; metadata stays public', async () => {
    const q = `/ImagingStudy?identifier=G-ACC-1`;
    await noPacsRequest(async () => {
      const none = await keyed.http.get(q);
      expect(none.status).toBe(401);
      expect(none.headers['www-authenticate']).toMatch(/ApiKey/);
      expect(none.data.resourceType).toBe('OperationOutcome');
      expect((await keyed.http.get(q, { headers: { 'X-API-Key': 'not-a-key' } })).status).toBe(401);
      const endpointOnly = { headers: { 'X-API-Key': KEY_ENDPOINT_ONLY } };
      expect((await keyed.http.get(`/ImagingStudy/${UID}`, endpointOnly)).status).toBe(403);
      expect((await keyed.http.get(q, endpointOnly)).status).toBe(403);
      expect((await keyed.http.get('/Endpoint', endpointOnly)).status).toBe(200);
      expect((await keyed.http.get('/metadata')).status).toBe(200);
    });
  });

  it('with no keys configured (the default), nobody gets in', async () => {
    const locked = await serveApi({ config: {}, sources: [src] });
    try {
      const res = await noPacsRequest(() =>
        locked.http.get('/ImagingStudy?identifier=G-ACC-1', { headers: { 'X-API-Key': KEY_READER } }),
      );
      expect(res.status).toBe(401);
    } finally {
      await locked.close();
    }
  });

  it('rate limits apply per client', async () => {
    const limited = await serveApi({
      config: {
        auth: {
          type: 'apiKey',
          keys: [
            { client: 'one', sha256: sha('k-one-000000') },
            { client: 'two', sha256: sha('k-two-000000') },
          ],
        },
        rateLimit: { max: 3 },
      },
      sources: [src],
    });
    try {
      const get = (key: string) => limited.http.get('/Endpoint', { headers: { 'X-API-Key': key } });
      for (let i = 0; i < 3; i++) expect((await get('k-one-000000')).status).toBe(200);
      const over = await get('k-one-000000');
      expect(over.status).toBe(429);
      expect(over.data.issue[0].code).toBe('throttled');
      expect((await get('k-two-000000')).status).toBe(200);
    } finally {
      await limited.close();
    }
  });

  describe('OAuth2 bearer JWTs against a JWKS', () => {
    let jwt: JwtIssuer;
    let jwtApi: ServedApi;

    beforeAll(async () => {
      jwt = await startJwtIssuer();
      jwtApi = await serveApi({
        config: {
          auth: { type: 'jwt', jwksUrl: jwt.jwksUrl, issuer: jwt.issuer, audience: jwt.audience },
          rateLimit: { enabled: false },
        },
        sources: [src],
      });
    });
    afterAll(async () => {
      await jwtApi?.close();
      await jwt?.close();
    });

    const get = (url: string, bearer?: string) =>
      noPacsRequest(() => jwtApi.http.get(url, { headers: bearer ? { Authorization: `Bearer ${bearer}` } : {} }));

    it('no token, a bad signature, wrong issuer or audience, or an expired token → 401', async () => {
      const scope = { scope: 'system/ImagingStudy.read' };
      const q = '/ImagingStudy?identifier=G-ACC-2';
      const none = await get(q);
      expect(none.status).toBe(401);
      expect(none.headers['www-authenticate']).toMatch(/Bearer/);
      expect((await get(q, 'not.a.jwt')).status).toBe(401);
      expect((await get(q, await jwt.token(scope, { key: jwt.otherKey }))).status).toBe(401);
      expect((await get(q, await jwt.token(scope, { iss: 'https://evil.example' }))).status).toBe(401);
      expect((await get(q, await jwt.token(scope, { aud: 'someone-else' }))).status).toBe(401);
      const expired = await get(q, await jwt.token(scope, { exp: Math.floor(Date.now() / 1000) - 3600 }));
      expect(expired.status).toBe(401);
      expect(expired.data.issue[0].diagnostics).toMatch(/expired/);
    });

    it('a token without the needed scope → 403', async () => {
      const q = '/ImagingStudy?identifier=G-ACC-2';
      const endpointOnly = await jwt.token({ scope: 'system/Endpoint.read', client_id: 'dir' });
      expect((await get(q, endpointOnly)).status).toBe(403);
      expect((await get('/Endpoint', endpointOnly)).status).toBe(200);
      expect((await get(q, await jwt.token({ scope: 'patient/ImagingStudy.read' }))).status).toBe(403);
      expect((await get(q, await jwt.token({}))).status).toBe(403);
      // _include needs Endpoint read as well.
      const studyOnly = await jwt.token({ scope: 'system/ImagingStudy.read' });
      expect((await get(`${q}&_include=ImagingStudy:endpoint`, studyOnly)).status).toBe(403);
    });
  });

  it('CORS answers only configured origins', async () => {
    const api = await serveApi({
      config: { auth: { type: 'none' }, cors: { enabled: true, origins: ['https://viewer.example'] } },
      sources: [src],
    });
    try {
      const ok = await api.http.get('/metadata', { headers: { Origin: 'https://viewer.example' } });
      expect(ok.headers['access-control-allow-origin']).toBe('https://viewer.example');
      const other = await api.http.get('/metadata', { headers: { Origin: 'https://evil.example' } });
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
      expect(
        (await open.http.get('/metadata', { headers: { Origin: 'https://viewer.example' } })).headers[
          'access-control-allow-origin'
        ],
      ).toBeUndefined();
    } finally {
      await api.close();
    }
  });
});

describe('the CapabilityStatement matches what the server does', () => {
  let cs: CapabilityStatement;
  beforeAll(async () => {
    cs = (await open.http.get('/metadata')).data;
  });

  it('declares ImagingStudy (TW Core) and Endpoint, read and search only', () => {
    expect(cs).toMatchObject({
      resourceType: 'CapabilityStatement',
      fhirVersion: '4.0.1',
      format: ['json'],
      kind: 'instance',
    });
    const types = cs.rest![0].resource!.map((r) => r.type);
    expect(types).toEqual(['ImagingStudy', 'Endpoint']);
    const is = cs.rest![0].resource![0];
    expect(is.supportedProfile).toEqual([
      'https://twcore.mohw.gov.tw/ig/twcore/StructureDefinition/ImagingStudy-twcore',
    ]);
    expect(is.interaction!.map((i) => i.code)).toEqual(['read', 'search-type']);
    expect(is.searchInclude).toEqual(['ImagingStudy:endpoint']);
  });

  it('unlisted parameters are refused under Prefer: handling=strict', async () => {
    for (const name of [
      '_sort',
      '_elements',
      'performer',
      'reason',
      'dicom-class',
      'basedon',
      '_lastUpdated',
      '_revinclude',
    ]) {
      const res = await noPacsRequest(() =>
        open.http.get(`/ImagingStudy?_id=${UID}&${name}=x`, { headers: { Prefer: 'handling=strict' } }),
      );
      expect([name, res.status]).toEqual([name, 400]);
    }
  });

  it('Endpoint parameters and interactions are as listed; other interactions are refused', async () => {
    const ep = cs.rest![0].resource![1];
    expect(ep.interaction!.map((i) => i.code)).toEqual(['read', 'search-type']);
    for (const p of ep.searchParam!) {
      const value =
        { _id: 'pacs-a', _count: '1', _format: 'json', _pretty: 'true', _elements: 'address' }[p.name] ?? 'count';
      expect(
        (await open.http.get(`/Endpoint?${p.name}=${value}`, { headers: { Prefer: 'handling=strict' } })).status,
      ).toBe(200);
    }
    expect((await open.http.get('/Endpoint?address=x', { headers: { Prefer: 'handling=strict' } })).status).toBe(400);
    await noPacsRequest(async () => {
      expect((await open.http.post('/ImagingStudy', {})).status).toBe(405);
      expect((await open.http.delete(`/ImagingStudy/${UID}`)).status).toBe(405);
      expect((await open.http.get('/Patient/1')).status).toBe(404);
    });
  });
});
