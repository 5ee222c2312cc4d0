/**
 * The HTTP side of the source layer against a local HTTP server that answers the way some PACS do
 * (Warning: 299, 206, 429/503 with Retry-After, 401, bad JSON, silence). Behaviour of a real PACS is
 * tested against Orthanc in test/integration/dicomweb.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../../../src/config';
import { createPacsSource } from '../../../src/dicomweb';
import { createAuthorizer } from '../../../src/dicomweb/auth';
import { PacsError } from '../../../src/dicomweb/types';

interface Seen {
  url: string;
  authorization?: string;
  body?: string;
}

let server: http.Server;
let base: string;
const seen: Record<string, Seen[]> = {};
const counters: Record<string, number> = {};
const study = (uid: string) => ({ '0020000D': { vr: 'UI', Value: [uid] } });

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const [, scenario, ...rest] = (req.url ?? '').split('/');
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      (seen[scenario] ??= []).push({ url: req.url!, authorization: req.headers.authorization, body });
      const n = (counters[scenario] = (counters[scenario] ?? 0) + 1);
      const json = (status: number, data: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'Content-Type': 'application/dicom+json', ...headers });
        res.end(JSON.stringify(data));
      };
      switch (scenario) {
        // These two hold one study per day and truncate any search wider than one day, as a server
        // capped at 2 answers would.
        case 'warning':
        case 'partial': {
          const day = /00080020=(\d{8})(-?)/.exec(req.url!)!;
          if (day[2]) {
            const partial = [study('1.1'), study('1.2')];
            return scenario === 'partial'
              ? json(206, partial)
              : json(200, partial, {
                  Warning: '299 pacs: "The number of results exceeded the maximum supported by the server"',
                });
          }
          return json(200, day[1] === '20240101' ? [study('1.1')] : day[1] === '20240102' ? [study('1.2')] : []);
        }
        case 'flaky':
          return n === 1 ? json(503, {}, { 'Retry-After': '0' }) : json(200, [study('1.2')]);
        case 'throttled':
          return json(429, {}, { 'Retry-After': '0' });
        case 'badrequest':
          return json(400, { error: 'nope' });
        case 'forbidden':
          return json(401, {});
        case 'notjson':
          res.writeHead(200, { 'Content-Type': 'application/dicom+json' });
          return res.end('<html>oops');
        // Empty Value Matching: StudyDate="" lists exactly the undated studies.
        case 'evm':
        case 'literal': {
          const undated = { '0020000D': { vr: 'UI', Value: ['9.1'] }, '00080020': { vr: 'DA' } };
          const dated = { '0020000D': { vr: 'UI', Value: ['9.2'] }, '00080020': { vr: 'DA', Value: ['20240101'] } };
          const badDate = { '0020000D': { vr: 'UI', Value: ['9.3'] }, '00080020': { vr: 'DA', Value: ['2024-13-01'] } };
          if (req.url!.includes('00080020=%22%22')) return json(200, scenario === 'evm' ? [undated] : []);
          return json(200, [dated, undated, badDate]);
        }
        case 'oauth':
          if (rest[0] === 'token') {
            const expires = counters.oauthExpires ?? 3600;
            return json(200, { access_token: `tok${n}`, token_type: 'Bearer', expires_in: expires });
          }
          // The PACS accepts only the newest token once "revoked" is set.
          if (counters.revoked && req.headers.authorization === 'Bearer tok1') return json(401, {});
          return json(200, [study('1.3')]);
        default:
          return json(200, [study('1.0')]);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise((r) => server.close(r)));

const source = (scenario: string, extra: Record<string, unknown> = {}) =>
  createPacsSource(
    parseConfig({ sources: [{ id: 'test-pacs', qidoBase: `${base}/${scenario}`, retries: 2, ...extra }] }).sources[0],
    {
      retry: { baseMs: 5, maxMs: 50 },
    },
  );

describe('query wire form', () => {
  it('sends names widened with wildcards, IDs exactly, and UIDs/dates as they are', async () => {
    const s = source('wire');
    await s.searchStudies({
      PatientName: 'Doe^Peter',
      PatientID: 'P-1',
      StudyDate: '20240101-20240102',
      StudyInstanceUID: '1.2,1.3',
    });
    const url = seen.wire.at(-1)!.url;
    expect(url).toContain('00100010=Doe?Peter');
    expect(url).toContain('00100020=P-1');
    expect(url).toContain('00080020=20240101-20240102');
    expect(url).toContain('0020000D=1.2,1.3');
    expect(url).toMatch(/includefield=[0-9A-F,]+/);
    expect(url).not.toMatch(/%5E|%3F|%2C/i);
  });
});

describe('identifying values are never widened', () => {
  it('an ID that cannot travel exactly is refused without a request; a percent-decoding PACS gets it encoded', async () => {
    const before = seen.wire.length;
    await expect(source('wire').searchStudies({ PatientID: '病人 1' })).rejects.toThrow(/non-ASCII/);
    expect(seen.wire.length).toBe(before);
    await source('wire', { percentDecodesQueryValues: true }).searchStudies({ PatientID: '病人 1' });
    expect(seen.wire.at(-1)!.url).toContain('00100020=%E7%97%85%E4%BA%BA%201');
  });
});

describe('truncation signals and errors', () => {
  it('Warning: 299 and 206 make a page count as truncated (and split the window)', async () => {
    for (const scenario of ['warning', 'partial']) {
      const s = source(scenario);
      const found = await s.findStudies({ from: '20240101', to: '20240102' });
      expect(found.map((d) => d['0020000D'].Value![0]).sort()).toEqual(['1.1', '1.2']); // each once
      expect(s.stats.splits).toBe(1);
      expect(s.stats.requests.studies).toBe(3);
      expect(seen[scenario].slice(-2).map((x) => /00080020=(\d+)/.exec(x.url)![1])).toEqual(['20240101', '20240102']);
    }
  });

  it('retries 503 honouring Retry-After, then succeeds', async () => {
    const s = source('flaky');
    const out = await s.searchStudies({});
    expect(out).toEqual([study('1.2')]);
    expect(s.stats.retries).toBe(1);
    expect(s.stats.requests.studies).toBe(2);
  });

  it('gives up on a persistent 429 after the configured retries', async () => {
    const s = source('throttled');
    await expect(s.searchStudies({})).rejects.toMatchObject({ status: 429, kind: 'http' });
    expect(s.stats.requests.studies).toBe(3);
  });

  it('does not retry other 4xx', async () => {
    const s = source('badrequest');
    await expect(s.searchStudies({})).rejects.toMatchObject({ status: 400, kind: 'http', retryable: false });
    expect(s.stats.requests.studies).toBe(1);
  });

  it('401 is an auth error that names the source and never the credentials', async () => {
    const s = source('forbidden', { auth: { type: 'basic', username: 'alice', password: 's3cret-pw' } });
    const err = await s.searchStudies({}).catch((e) => e);
    expect(err).toBeInstanceOf(PacsError);
    expect(err).toMatchObject({ status: 401, kind: 'auth', retryable: false });
    expect(err.message).toContain('test-pacs');
    expect(err.message).toMatch(/credentials/);
    expect(err.message).not.toContain('s3cret-pw');
    expect(seen.forbidden.at(-1)!.authorization).toBe(`Basic ${Buffer.from('alice:s3cret-pw').toString('base64')}`);
  });

  it('a body that is not JSON is a bad-response error', async () => {
    await expect(source('notjson', { retries: 0 }).searchStudies({})).rejects.toMatchObject({ kind: 'bad-response' });
  });

  it('a refused connection is a network error', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const s = createPacsSource(
      parseConfig({ sources: [{ id: 'gone', qidoBase: `http://127.0.0.1:${port}`, retries: 0 }] }).sources[0],
    );
    await expect(s.searchStudies({})).rejects.toMatchObject({
      kind: 'network',
      message: expect.stringContaining('ECONNREFUSED'),
    });
  });
});

describe('undated sweep', () => {
  const uidsOf = (list: Array<Record<string, { Value?: unknown[] }>>) => list.map((d) => d['0020000D'].Value![0]);
  it('uses StudyDate="" when the server supports Empty Value Matching (one request, no scan)', async () => {
    const s = source('evm');
    expect(uidsOf(await s.findUndatedStudies())).toEqual(['9.1']);
    expect(s.stats.requests.studies).toBe(1);
    // Later sweeps trust it: a second sweep is again one request.
    await s.findUndatedStudies();
    expect(s.stats.requests.studies).toBe(2);
  });
  it('falls back to scanning every study when "" matches nothing, keeping those without a valid StudyDate', async () => {
    const s = source('literal');
    expect(uidsOf(await s.findUndatedStudies()).sort()).toEqual(['9.1', '9.3']);
    expect(s.stats.requests.studies).toBe(2);
  });
});

describe('OAuth2 client credentials', () => {
  const oauth = (clientAuth: string) => ({
    auth: {
      type: 'oauth2',
      tokenUrl: `${base}/oauth/token`,
      clientId: 'bridge',
      clientSecret: 'top secret',
      scope: 'dicom.read',
      clientAuth,
    },
  });

  it('fetches one token for many requests and sends it as Bearer', async () => {
    const s = source('oauth', oauth('client_secret_basic'));
    await Promise.all([s.searchStudies({}), s.searchStudies({}), s.searchStudies({})]);
    expect(s.stats.requests.token).toBe(1);
    const tokenRequest = seen.oauth.find((x) => x.url.endsWith('/token'))!;
    expect(tokenRequest.body).toBe('grant_type=client_credentials&scope=dicom.read');
    // RFC 6749 §2.3.1: form-urlencoded before Basic encoding, so a space is '+'.
    expect(tokenRequest.authorization).toBe(`Basic ${Buffer.from('bridge:top+secret').toString('base64')}`);
    const pacsRequests = seen.oauth.filter((x) => !x.url.endsWith('/token'));
    expect(new Set(pacsRequests.map((x) => x.authorization))).toEqual(new Set(['Bearer tok1']));
  });

  it('a 401 drops the cached token and retries once with a new one', async () => {
    counters.revoked = 1;
    const s = source('oauth', oauth('client_secret_post'));
    // tok1 is the token the earlier test cached on its own source; a new source fetches afresh.
    const out = await s.searchStudies({});
    expect(out).toEqual([study('1.3')]);
    const tokenBodies = seen.oauth.filter((x) => x.url.endsWith('/token')).map((x) => x.body);
    expect(tokenBodies.at(-1)).toContain('client_secret=top+secret');
    delete counters.revoked;
  });

  it('renews the token before it expires', async () => {
    let clock = 1_000_000;
    const a = createAuthorizer(
      {
        type: 'oauth2',
        tokenUrl: `${base}/oauth/token`,
        clientId: 'c',
        clientSecret: 's',
        clientAuth: 'client_secret_basic',
      },
      { sourceId: 'x', timeoutMs: 2000, now: () => clock },
    );
    const first = await a.header();
    clock += 3_550_000; // within 60 s of the one-hour expiry
    const second = await a.header();
    expect(second).not.toBe(first);
    clock += 1000;
    expect(await a.header()).toBe(second);
  });

  it('a token endpoint refusing the client is an auth error without the secret', async () => {
    const a = createAuthorizer(
      {
        type: 'oauth2',
        tokenUrl: `${base}/badrequest`,
        clientId: 'c',
        clientSecret: 'very-secret',
        clientAuth: 'client_secret_basic',
      },
      { sourceId: 'x', timeoutMs: 2000 },
    );
    const err = await a.header().catch((e) => e);
    expect(err).toMatchObject({ kind: 'auth', status: 400 });
    expect(err.message).not.toContain('very-secret');
  });
});
