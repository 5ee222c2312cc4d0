/**
 * The FHIR API's guards where they meet a real Orthanc holding studies: cached and concurrent repeats ask the PACS
 * once; a PACS refusing our credentials gives 502 without them; the right API key or JWT is served (and a cached
 * answer still checks the asking client's scope); the audit trail names parameters, never values; every parameter
 * the CapabilityStatement lists finds the study. Guards that stop a request before any PACS request are in
 * guard.test.ts, which starts no Orthanc.
 */
import type { CapabilityStatement } from 'fhir/r4';
import { loadStudies, makeSeries, makeStudy, type SyntheticStudy } from '../../fixtures/synthetic';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import {
  apiSource,
  KEY_ENDPOINT_ONLY,
  KEY_READER,
  KEYED_CONFIG,
  matchIds,
  pacsRequests,
  serveApi,
  sha,
  sourceConfig,
  type ServedApi,
} from './helpers';
import { startJwtIssuer } from './jwtIssuer';
import type { ApiSource } from '../../../src/api/app';

const enc = encodeURIComponent;
/** The PACS asks for credentials, so one Orthanc also serves the refused-credentials test. */
const RIGHT = { type: 'basic', username: 'bridge', password: 'right-password' } as const;

let orthanc: OrthancServer;
let studies: SyntheticStudy[];
let src: ApiSource;
let open: ServedApi;

beforeAll(async () => {
  orthanc = await startOrthanc({ users: { bridge: RIGHT.password } });
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
  src = apiSource(sourceConfig('a', orthanc.dicomWebBase, { auth: RIGHT }));
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

describe('search parameters', () => {
  it('an unknown parameter is refused, or with Prefer: handling=lenient ignored and left out of the self link', async () => {
    const uid = studies[0].studyUid;
    expect((await open.http.get(`/ImagingStudy?_id=${uid}&_sort=-started&foo=bar`)).status).toBe(400);
    const lenient = await open.http.get(`/ImagingStudy?_id=${uid}&_sort=-started&foo=bar`, {
      headers: { Prefer: 'handling=lenient' },
    });
    expect(lenient.status).toBe(200);
    expect(matchIds(lenient.data)).toEqual([uid]);
    const self = lenient.data.link.find((l: { relation: string }) => l.relation === 'self').url as string;
    expect(self).not.toMatch(/foo/);
    expect(self).toContain(`_id=${uid}`);
    expect(self).toContain('_sort=-started');
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
    const s = apiSource(sourceConfig('a', orthanc.dicomWebBase, { auth: RIGHT }));
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
    const s = apiSource(sourceConfig('a', orthanc.dicomWebBase, { auth: RIGHT }));
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
    const s = apiSource(sourceConfig('a', orthanc.dicomWebBase, { auth: RIGHT }));
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
  it('a PACS refusing our credentials gives 502 without the credentials', async () => {
    const api = await serveApi({
      config: { auth: { type: 'none' } },
      sources: [
        apiSource(
          sourceConfig('guarded', orthanc.dicomWebBase, {
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
    }
  });
});

describe('access control', () => {
  it('the right API key is served, and a cached answer still checks the asking client’s scope', async () => {
    const keyed = await serveApi({
      config: KEYED_CONFIG,
      sources: [src],
    });
    try {
      const q = `/ImagingStudy?identifier=G-ACC-1`;
      const ok = await keyed.http.get(q, { headers: { 'X-API-Key': KEY_READER } });
      expect(ok.status).toBe(200);
      expect(matchIds(ok.data)).toEqual([studies[0].studyUid]);
      const afterFirst = pacsRequests(src.pacs);
      expect((await keyed.http.get(q, { headers: { 'X-API-Key': KEY_ENDPOINT_ONLY } })).status).toBe(403);
      expect((await keyed.http.get(q, { headers: { 'X-API-Key': KEY_READER } })).data).toEqual(ok.data);
      expect(pacsRequests(src.pacs)).toBe(afterFirst);
    } finally {
      await keyed.close();
    }
  });

  it('a JWT with the right SMART scope is served', async () => {
    const jwt = await startJwtIssuer();
    const jwtApi = await serveApi({
      config: {
        auth: { type: 'jwt', jwksUrl: jwt.jwksUrl, issuer: jwt.issuer, audience: jwt.audience },
        rateLimit: { enabled: false },
      },
      sources: [src],
    });
    try {
      const get = async (url: string, scope: string) =>
        jwtApi.http.get(url, { headers: { Authorization: `Bearer ${await jwt.token({ scope, client_id: 'ris' })}` } });
      const res = await get('/ImagingStudy?identifier=G-ACC-2', 'system/ImagingStudy.read');
      expect(res.status).toBe(200);
      expect(matchIds(res.data)).toEqual([studies[1].studyUid]);
      expect((await get(`/ImagingStudy/${studies[1].studyUid}`, 'system/ImagingStudy.rs')).status).toBe(200);
    } finally {
      await jwtApi.close();
      await jwt.close();
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
      await api.http.get(`/ImagingStudy?_id=${studies[0].studyUid}&Huang-G-PAT-1`, {
        headers: { ...h.headers, Prefer: 'handling=lenient' },
      });
      await api.http.get(`/ImagingStudy?patient:identifier=G-PAT-1&_count=5`, h); // answered from the cache
      const lines = api.auditLines;
      // Lines are written when each response finishes: wait for the last one.
      for (let i = 0; i < 100 && lines.length < 6; i++) await new Promise((r) => setTimeout(r, 10));
      expect(lines).toHaveLength(6);
      // The first search and its cached repeat are audited alike.
      const patientSearch = {
        client: 'ward-viewer',
        interaction: 'search-type',
        resourceType: 'ImagingStudy',
        params: ['patient:identifier', '_count'],
        count: 2,
        status: 200,
      };
      expect(lines[5]).toMatchObject(patientSearch);
      expect(lines[0]).toMatchObject(patientSearch);
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

  it('every listed ImagingStudy parameter is accepted under Prefer: handling=strict, and finds the study', async () => {
    const s = studies[0];
    const sample: Record<string, string> = {
      ...matchingValues(s),
      _count: '5',
      _summary: 'false',
      _cursor: '0.0',
      _format: 'json',
      _pretty: 'true',
      _elements: 'identifier',
      _sort: '-started',
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
});
