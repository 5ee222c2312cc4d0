/**
 * What keeps the FHIR API safe and cheap, against a real Orthanc: bad input gets a 400 and no PACS
 * request; API keys and JWTs (from a JWKS served here, keys made with jose) give 401/403 as they
 * should; cached and concurrent repeats ask the PACS once; PACS failures give 502/504 without
 * addresses; the audit trail names parameters, never values; the CapabilityStatement matches.
 */
import { createHash } from 'node:crypto';
import type { Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import express from 'express';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import type { CapabilityStatement, OperationOutcome } from 'fhir/r4';
import { loadStudies, makeSeries, makeStudy, type SyntheticStudy } from '../../fixtures/synthetic';
import { freePort, startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { apiSource, matchIds, pacsRequests, serveApi, sourceConfig, type ServedApi } from './helpers';
import type { ApiSource } from '../../../src/api/app';

const enc = encodeURIComponent;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

let orthanc: OrthancServer;
let studies: SyntheticStudy[];
let src: ApiSource;
let open: ServedApi;

beforeAll(async () => {
  orthanc = await startOrthanc();
  studies = [
    makeStudy({ accession: 'G-ACC-1', patient: { id: 'G-PAT-1', alphabetic: 'Huang^Secret', birthDate: '19800101' } }),
    makeStudy({
      accession: 'G-ACC-2',
      patient: { id: 'G-PAT-2', alphabetic: 'Tsai^Hidden' },
      series: [makeSeries({ modality: 'MR', instances: 2 })],
    }),
    makeStudy({ accession: 'G-ACC-3', patient: { id: 'G-PAT-1', alphabetic: 'Huang^Secret' }, studyDate: '20240316' }),
  ];
  await loadStudies(orthanc, studies);
  src = apiSource(sourceConfig('a', orthanc.dicomWebBase));
  open = await serveApi({
    config: { auth: { type: 'none' }, patientIdRule: {}, rateLimit: { enabled: false } },
    sources: [src],
  });
});

afterAll(async () => {
  await open?.close();
  await orthanc?.stop();
});

/** A value of each search parameter that finds `s` (the guard fixtures' accession and patient). */
function matchingValues(s: SyntheticStudy): Record<string, string> {
  return {
    _id: s.studyUid,
    identifier: 'G-ACC-1',
    patient: 'Patient/G-PAT-1',
    subject: 'Patient/G-PAT-1',
    started: 'ge2024-03-15',
    modality: 'CT',
    status: 'available',
    series: s.series[0].seriesUid,
  };
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
    const before = pacsRequests(src.pacs);
    const res = await open.http.get(url);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/fhir\+json/);
    const oo = res.data as OperationOutcome;
    expect(oo.resourceType).toBe('OperationOutcome');
    expect(oo.issue[0].severity).toBe('error');
    expect(oo.issue[0].diagnostics!.length).toBeGreaterThan(10);
    expect(pacsRequests(src.pacs)).toBe(before);
  });

  it('an unknown parameter is ignored and left out of the self link, or refused with Prefer: handling=strict', async () => {
    const uid = studies[0].studyUid;
    const lenient = await open.http.get(`/ImagingStudy?_id=${uid}&_sort=-started&foo=bar`);
    expect(lenient.status).toBe(200);
    expect(matchIds(lenient.data)).toEqual([uid]);
    const self = lenient.data.link.find((l: { relation: string }) => l.relation === 'self').url as string;
    expect(self).not.toMatch(/_sort|foo/);
    expect(self).toContain(`_id=${uid}`);
    const before = pacsRequests(src.pacs);
    const strict = await open.http.get(`/ImagingStudy?_id=${uid}&foo=bar`, { headers: { Prefer: 'handling=strict' } });
    expect(strict.status).toBe(400);
    expect(strict.data.issue[0].diagnostics).toMatch(/foo/);
    expect(pacsRequests(src.pacs)).toBe(before);
  });

  it('unrestricted searches are served only when configured', async () => {
    const api = await serveApi({ config: { auth: { type: 'none' }, allowUnrestrictedSearch: true }, sources: [src] });
    try {
      const res = await api.http.get('/ImagingStudy?modality=MR');
      expect(res.status).toBe(200);
      expect(matchIds(res.data)).toEqual([studies[1].studyUid]);
    } finally {
      await api.close();
    }
  });
});

describe('caching and in-flight sharing', () => {
  it('a cached repeat of a search or a read makes no PACS request', async () => {
    const s = apiSource(sourceConfig('a', orthanc.dicomWebBase));
    const api = await serveApi({ config: { auth: { type: 'none' }, cache: { ttlSeconds: 300 } }, sources: [s] });
    try {
      const q = `/ImagingStudy?patient:identifier=G-PAT-1`;
      const first = await api.http.get(q);
      expect(matchIds(first.data)).toHaveLength(2);
      const afterFirst = pacsRequests(s.pacs);
      expect(afterFirst).toBeGreaterThan(0);
      const second = await api.http.get(q);
      expect(second.data).toEqual(first.data);
      expect(pacsRequests(s.pacs)).toBe(afterFirst);

      const read1 = await api.http.get(`/ImagingStudy/${studies[1].studyUid}`);
      const afterRead = pacsRequests(s.pacs);
      const read2 = await api.http.get(`/ImagingStudy/${studies[1].studyUid}`);
      expect(read2.data).toEqual(read1.data);
      expect(pacsRequests(s.pacs)).toBe(afterRead);
    } finally {
      await api.close();
    }
  });

  it('concurrent identical searches share one PACS query', async () => {
    const s = apiSource(sourceConfig('a', orthanc.dicomWebBase));
    await s.pacs.supportsUidListMatching();
    const api = await serveApi({ config: { auth: { type: 'none' }, rateLimit: { enabled: false } }, sources: [s] });
    try {
      const before = { ...s.pacs.stats.requests };
      const answers = await Promise.all(
        Array.from({ length: 8 }, () => api.http.get('/ImagingStudy?started=ge2024-03-01')),
      );
      for (const a of answers) expect(matchIds(a.data)).toHaveLength(3);
      expect(s.pacs.stats.requests.studies - before.studies).toBe(1);
      expect(s.pacs.stats.requests.series - before.series).toBe(1);
    } finally {
      await api.close();
    }
  });

  it('with the cache off, a repeat asks the PACS again', async () => {
    const s = apiSource(sourceConfig('a', orthanc.dicomWebBase));
    const api = await serveApi({ config: { auth: { type: 'none' }, cache: { enabled: false } }, sources: [s] });
    try {
      await api.http.get('/ImagingStudy?identifier=G-ACC-2');
      const once = pacsRequests(s.pacs);
      await api.http.get('/ImagingStudy?identifier=G-ACC-2');
      expect(pacsRequests(s.pacs)).toBe(once * 2);
    } finally {
      await api.close();
    }
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
      const res = await api.http.get(`/ImagingStudy/${studies[0].studyUid}`);
      expect(res.status).toBe(504);
      expect(res.data.issue[0].code).toBe('timeout');
      expect(JSON.stringify(res.data)).not.toContain(String(port));
    } finally {
      await api.close();
      sockets.forEach((s) => s.destroy());
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it('a PACS refusing our credentials gives 502 without the credentials', async () => {
    const guarded = await startOrthanc({ users: { bridge: 'right-password' } });
    const api = await serveApi({
      config: { auth: { type: 'none' } },
      sources: [
        apiSource(
          sourceConfig('guarded', guarded.dicomWebBase, {
            auth: { type: 'basic', username: 'bridge', password: 'wrong-password' },
          }),
        ),
      ],
    });
    try {
      const res = await api.http.get('/ImagingStudy?identifier=X1');
      expect(res.status).toBe(502);
      expect(JSON.stringify(res.data)).not.toMatch(/wrong-password|bridge:|127\.0\.0\.1/);
    } finally {
      await api.close();
      await guarded.stop();
    }
  });
});

describe('access control', () => {
  const KEY_READER = 'key-reader-0123456789';
  const KEY_ENDPOINT_ONLY = 'key-endpoint-only-987';
  let keyed: ServedApi;

  beforeAll(async () => {
    keyed = await serveApi({
      config: {
        auth: {
          type: 'apiKey',
          keys: [
            { client: 'viewer', sha256: sha(KEY_READER) },
            { client: 'directory', sha256: sha(KEY_ENDPOINT_ONLY), scopes: ['system/Endpoint.read'] },
          ],
        },
        rateLimit: { max: 1000 },
      },
      sources: [src],
    });
  });
  afterAll(() => keyed.close());

  it('API keys: none or wrong → 401, wrong scope → 403, right → 200; metadata stays public', async () => {
    const q = `/ImagingStudy?identifier=G-ACC-1`;
    const before = pacsRequests(src.pacs);
    const none = await keyed.http.get(q);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/ApiKey/);
    expect(none.data.resourceType).toBe('OperationOutcome');
    expect((await keyed.http.get(q, { headers: { 'X-API-Key': 'not-a-key' } })).status).toBe(401);
    expect(
      (await keyed.http.get(`/ImagingStudy/${studies[0].studyUid}`, { headers: { 'X-API-Key': KEY_ENDPOINT_ONLY } }))
        .status,
    ).toBe(403);
    expect((await keyed.http.get(q, { headers: { 'X-API-Key': KEY_ENDPOINT_ONLY } })).status).toBe(403);
    expect(pacsRequests(src.pacs)).toBe(before);
    expect((await keyed.http.get('/Endpoint', { headers: { 'X-API-Key': KEY_ENDPOINT_ONLY } })).status).toBe(200);
    const ok = await keyed.http.get(q, { headers: { 'X-API-Key': KEY_READER } });
    expect(ok.status).toBe(200);
    expect(matchIds(ok.data)).toEqual([studies[0].studyUid]);
    // The same search answered from the cache still checks the asking client's scope.
    expect((await keyed.http.get(q, { headers: { 'X-API-Key': KEY_ENDPOINT_ONLY } })).status).toBe(403);
    expect((await keyed.http.get(q, { headers: { 'X-API-Key': KEY_READER } })).data).toEqual(ok.data);
    expect((await keyed.http.get('/metadata')).status).toBe(200);
  });

  it('with no keys configured (the default), nobody gets in', async () => {
    const locked = await serveApi({ config: {}, sources: [src] });
    try {
      expect(
        (await locked.http.get('/ImagingStudy?identifier=G-ACC-1', { headers: { 'X-API-Key': KEY_READER } })).status,
      ).toBe(401);
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
    let jwksServer: Server;
    let privateKey: KeyLike;
    let otherKey: KeyLike;
    let jwtApi: ServedApi;
    const issuer = 'https://auth.hospital.example';
    const audience = 'pacs-fhir-bridge';

    const token = (
      claims: Record<string, unknown>,
      o: { key?: KeyLike; iss?: string; aud?: string; exp?: string | number } = {},
    ) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(o.iss ?? issuer)
        .setAudience(o.aud ?? audience)
        .setIssuedAt()
        .setExpirationTime(o.exp ?? '5m')
        .sign(o.key ?? privateKey);

    beforeAll(async () => {
      const pair = await generateKeyPair('RS256');
      privateKey = pair.privateKey;
      otherKey = (await generateKeyPair('RS256')).privateKey;
      const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
      const jwksApp = express();
      jwksApp.get('/.well-known/jwks.json', (_req, res) => void res.json({ keys: [jwk] }));
      jwksServer = await new Promise((r) => {
        const s = jwksApp.listen(0, '127.0.0.1', () => r(s));
      });
      const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;
      jwtApi = await serveApi({
        config: { auth: { type: 'jwt', jwksUrl, issuer, audience }, rateLimit: { enabled: false } },
        sources: [src],
      });
    });
    afterAll(async () => {
      await jwtApi?.close();
      await new Promise<void>((r) => jwksServer.close(() => r()));
    });

    const get = (url: string, bearer?: string) =>
      jwtApi.http.get(url, { headers: bearer ? { Authorization: `Bearer ${bearer}` } : {} });

    it('a valid token with the right SMART scope is served', async () => {
      const res = await get(
        '/ImagingStudy?identifier=G-ACC-2',
        await token({ scope: 'system/ImagingStudy.read', client_id: 'ris' }),
      );
      expect(res.status).toBe(200);
      expect(matchIds(res.data)).toEqual([studies[1].studyUid]);
      expect(
        (
          await get(
            `/ImagingStudy/${studies[1].studyUid}`,
            await token({ scope: 'system/ImagingStudy.rs', client_id: 'ris' }),
          )
        ).status,
      ).toBe(200);
    });

    it('no token, a bad signature, wrong issuer or audience, or an expired token → 401', async () => {
      const scope = { scope: 'system/ImagingStudy.read' };
      const none = await get('/ImagingStudy?identifier=G-ACC-2');
      expect(none.status).toBe(401);
      expect(none.headers['www-authenticate']).toMatch(/Bearer/);
      expect((await get('/ImagingStudy?identifier=G-ACC-2', 'not.a.jwt')).status).toBe(401);
      expect((await get('/ImagingStudy?identifier=G-ACC-2', await token(scope, { key: otherKey }))).status).toBe(401);
      expect(
        (await get('/ImagingStudy?identifier=G-ACC-2', await token(scope, { iss: 'https://evil.example' }))).status,
      ).toBe(401);
      expect((await get('/ImagingStudy?identifier=G-ACC-2', await token(scope, { aud: 'someone-else' }))).status).toBe(
        401,
      );
      const expired = await get(
        '/ImagingStudy?identifier=G-ACC-2',
        await token(scope, { exp: Math.floor(Date.now() / 1000) - 3600 }),
      );
      expect(expired.status).toBe(401);
      expect(expired.data.issue[0].diagnostics).toMatch(/expired/);
    });

    it('a token without the needed scope → 403', async () => {
      const endpointOnly = await token({ scope: 'system/Endpoint.read', client_id: 'dir' });
      expect((await get('/ImagingStudy?identifier=G-ACC-2', endpointOnly)).status).toBe(403);
      expect((await get('/Endpoint', endpointOnly)).status).toBe(200);
      expect(
        (await get('/ImagingStudy?identifier=G-ACC-2', await token({ scope: 'patient/ImagingStudy.read' }))).status,
      ).toBe(403);
      expect((await get('/ImagingStudy?identifier=G-ACC-2', await token({}))).status).toBe(403);
      // _include needs Endpoint read as well.
      const studyOnly = await token({ scope: 'system/ImagingStudy.read' });
      expect((await get('/ImagingStudy?identifier=G-ACC-2&_include=ImagingStudy:endpoint', studyOnly)).status).toBe(
        403,
      );
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

describe('audit trail', () => {
  it('one line per request with client, parameter names, count and status — no patient data', async () => {
    const api = await serveApi({
      config: { auth: { type: 'apiKey', keys: [{ client: 'ward-viewer', sha256: sha('audit-key-123456') }] } },
      sources: [src],
    });
    try {
      const h = { headers: { 'X-API-Key': 'audit-key-123456' } };
      await api.http.get(`/ImagingStudy?patient:identifier=G-PAT-1&_count=5`, h);
      await api.http.get(`/ImagingStudy/${studies[1].studyUid}`, h);
      await api.http.get(`/ImagingStudy?identifier=G-ACC-1*`, h);
      await api.http.get(`/ImagingStudy?patient.identifier=G-PAT-2`);
      await api.http.get(`/ImagingStudy?_id=${studies[0].studyUid}&Huang-G-PAT-1`, h);
      await api.http.get(`/ImagingStudy?patient:identifier=G-PAT-1&_count=5`, h); // answered from the cache
      const lines = api.auditLines;
      // Lines are written when each response finishes: wait for the last one.
      for (let i = 0; i < 100 && lines.length < 6; i++) await new Promise((r) => setTimeout(r, 10));
      expect(lines).toHaveLength(6);
      expect(lines[5]).toMatchObject({
        client: 'ward-viewer',
        interaction: 'search-type',
        resourceType: 'ImagingStudy',
        params: ['patient:identifier', '_count'],
        count: 2,
        status: 200,
      });
      expect(lines[0]).toMatchObject({
        client: 'ward-viewer',
        interaction: 'search-type',
        resourceType: 'ImagingStudy',
        params: ['patient:identifier', '_count'],
        count: 2,
        status: 200,
      });
      expect(lines[1]).toMatchObject({
        client: 'ward-viewer',
        interaction: 'read',
        id: studies[1].studyUid,
        count: 1,
        status: 200,
      });
      expect(lines[2]).toMatchObject({ client: 'ward-viewer', params: ['identifier'], status: 400 });
      expect(lines[3]).toMatchObject({ client: 'anonymous', status: 401 });
      // A value smuggled in as a parameter name is not written either.
      expect(lines[4]).toMatchObject({ params: ['_id', '(unknown)'], count: 1, status: 200 });
      const text = JSON.stringify(lines);
      for (const phi of ['G-PAT-1', 'G-PAT-2', 'G-ACC-1', 'Huang', 'Secret', 'Tsai', '19800101', '1980-01-01'])
        expect(text).not.toContain(phi);
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

  it('every listed ImagingStudy parameter is accepted under Prefer: handling=strict, and finds the study', async () => {
    const s = studies[0];
    const sample: Record<string, string> = {
      ...matchingValues(s),
      _count: '5',
      _summary: 'false',
      _cursor: '0.0',
      _format: 'json',
    };
    const listed = cs.rest![0].resource![0].searchParam!.map((p) => p.name);
    expect(listed.sort()).toEqual(Object.keys(sample).sort());
    for (const name of listed) {
      const restrict = name === '_id' ? '' : `&_id=${s.studyUid}`;
      const res = await open.http.get(`/ImagingStudy?${name}=${enc(sample[name])}${restrict}`, {
        headers: { Prefer: 'handling=strict' },
      });
      expect([name, res.status]).toEqual([name, 200]);
      expect(matchIds(res.data)).toEqual([s.studyUid]);
    }
    const withInclude = await open.http.get(`/ImagingStudy?_id=${s.studyUid}&_include=ImagingStudy:endpoint`, {
      headers: { Prefer: 'handling=strict' },
    });
    expect(withInclude.status).toBe(200);
  });

  it('parameters documented as not restricting on their own are refused alone; the others are served alone', async () => {
    const s = studies[0];
    const sample = matchingValues(s);
    const params = cs.rest![0].resource![0].searchParam!.filter((p) => p.name in sample);
    expect(params.map((p) => p.name).sort()).toEqual(Object.keys(sample).sort());
    for (const p of params) {
      const res = await open.http.get(`/ImagingStudy?${p.name}=${enc(sample[p.name])}`);
      if (/Not restricting on its own/.test(p.documentation ?? '')) expect([p.name, res.status]).toEqual([p.name, 400]);
      else {
        expect([p.name, res.status]).toEqual([p.name, 200]);
        expect(matchIds(res.data)).toContain(s.studyUid);
      }
    }
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
      const res = await open.http.get(`/ImagingStudy?_id=${studies[0].studyUid}&${name}=x`, {
        headers: { Prefer: 'handling=strict' },
      });
      expect([name, res.status]).toEqual([name, 400]);
    }
  });

  it('Endpoint parameters and interactions are as listed; other interactions are refused', async () => {
    const ep = cs.rest![0].resource![1];
    expect(ep.interaction!.map((i) => i.code)).toEqual(['read', 'search-type']);
    for (const p of ep.searchParam!) {
      const value = { _id: 'pacs-a', _count: '1', _format: 'json' }[p.name] ?? 'count';
      expect(
        (await open.http.get(`/Endpoint?${p.name}=${value}`, { headers: { Prefer: 'handling=strict' } })).status,
      ).toBe(200);
    }
    expect((await open.http.get('/Endpoint?address=x', { headers: { Prefer: 'handling=strict' } })).status).toBe(400);
    expect((await open.http.post('/ImagingStudy', {})).status).toBe(405);
    expect((await open.http.delete(`/ImagingStudy/${studies[0].studyUid}`)).status).toBe(405);
    expect((await open.http.get('/Patient/1')).status).toBe(404);
  });
});
