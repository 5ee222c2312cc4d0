/**
 * The change feed under the one outbound policy, against a real Orthanc: its /changes and /studies requests are
 * retried on 503 (Retry-After honoured) and 429 as the source's QIDO-RS requests are, a 500 is not, and a rejected
 * OAuth2 token is refreshed once per request. A fault proxy injects the statuses; an OAuth2 gate in front of
 * Orthanc issues tokens and refuses revoked ones.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { sourceSchema, type SourceInput } from '../../../src/config';
import { createChangeFeed } from '../../../src/dicomweb/changeFeeds';
import { loadStudies, makeStudy } from '../../fixtures/synthetic';
import { startFaultProxy, type FaultProxy } from '../../harness/faultProxy';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';

let orthanc: OrthancServer;
let proxy: FaultProxy;
const study = makeStudy({ studyDate: '20200303' });

const feedConfig = (over: Partial<SourceInput>) =>
  sourceSchema.parse({ id: 'pacs', changeFeed: { type: 'orthanc' }, ...over, qidoBase: over.qidoBase! });
/** Short backoff steps, so the test waits for Retry-After rather than the default 0.5 s steps. */
const FAST = { retry: { baseMs: 5, maxMs: 3000 } };
const changesRequests = () => proxy.requests.filter((r) => r.path.startsWith('/changes'));

beforeAll(async () => {
  orthanc = await startOrthanc();
  await loadStudies(orthanc, [study]);
  proxy = await startFaultProxy(orthanc.restUrl);
}, 60000);

afterAll(async () => {
  await proxy?.stop();
  await orthanc?.stop();
});

beforeEach(() => {
  proxy.clearFaults();
  proxy.requests.length = 0;
});

describe('retries', () => {
  it('a 503 with Retry-After is retried after the wait it asks for, then the page is read', async () => {
    const feed = (await createChangeFeed(feedConfig({ qidoBase: proxy.via(orthanc.dicomWebBase), retries: 3 }), FAST))!;
    proxy.inject({ status: 503, retryAfter: '1', match: (r) => r.path.startsWith('/changes') });
    const page = await feed.poll(0, 100);
    expect(page.events.some((e) => e.kind === 'study-changing' || e.kind === 'study-ready')).toBe(true);
    const [refused, answered] = changesRequests();
    expect(refused).toMatchObject({ injected: 503 });
    expect(answered).toMatchObject({ status: 200 });
    expect(changesRequests()).toHaveLength(2);
    expect(answered!.at - refused!.at).toBeGreaterThanOrEqual(950);
    expect(feed.stats).toMatchObject({ retries: 1, requests: 2 });
  });

  it('429s and study lookups are retried too, up to the source’s retries; then the error is thrown', async () => {
    const feed = (await createChangeFeed(feedConfig({ qidoBase: proxy.via(orthanc.dicomWebBase), retries: 2 }), FAST))!;
    const ref = (await feed.poll(0, 100)).events.find((e) => e.studyRef)!.studyRef!;
    proxy.inject({ status: 429, retryAfter: '0', times: 2, match: (r) => r.path.startsWith('/studies/') });
    expect((await feed.studyUids([ref])).get(ref)).toBe(study.studyUid);
    expect(proxy.requests.filter((r) => r.path.startsWith('/studies/')).map((r) => r.status)).toEqual([429, 429, 200]);

    proxy.requests.length = 0;
    proxy.inject({ status: 503, retryAfter: '0', times: Infinity, match: (r) => r.path.startsWith('/changes') });
    await expect(feed.head()).rejects.toMatchObject({ status: 503, retryable: true });
    expect(changesRequests()).toHaveLength(3); // the first attempt and 2 retries
  });

  it('a 500 is not retried (as for QIDO-RS): one attempt, a retryable error for the next tick', async () => {
    const feed = (await createChangeFeed(feedConfig({ qidoBase: proxy.via(orthanc.dicomWebBase), retries: 3 }), FAST))!;
    proxy.inject({ status: 500, match: (r) => r.path.startsWith('/changes') });
    await expect(feed.poll(0, 10)).rejects.toMatchObject({ status: 500 });
    expect(changesRequests()).toHaveLength(1);
  });
});

describe('OAuth2', () => {
  let gate: http.Server;
  let gateUrl: string;
  let issued = 0;
  /** The one token the gate accepts (the newest issued); undefined: the tokens issued so far are revoked. */
  let valid: string | undefined;
  /** The gate refuses every token, new ones too (the client itself lost its access). */
  let refuseAll = false;
  const seen: { path: string; authorization?: string; status: number }[] = [];

  beforeAll(async () => {
    gate = http.createServer((req, res) => {
      if (req.url === '/token') {
        valid = `tok-${++issued}`;
        res.writeHead(200, { 'Content-Type': 'application/json' });
        return res.end(JSON.stringify({ access_token: valid, token_type: 'Bearer', expires_in: 3600 }));
      }
      const ok = !refuseAll && valid !== undefined && req.headers.authorization === `Bearer ${valid}`;
      seen.push({ path: req.url!, authorization: req.headers.authorization, status: ok ? 200 : 401 });
      if (!ok) {
        res.writeHead(401);
        return res.end();
      }
      const target = new URL(orthanc.restUrl);
      const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: 'GET' }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.end();
    });
    await new Promise<void>((r) => gate.listen(0, '127.0.0.1', r));
    gateUrl = `http://127.0.0.1:${(gate.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise((r) => gate.close(r)));

  const oauth = () =>
    feedConfig({
      qidoBase: `${gateUrl}/dicom-web`,
      retries: 0,
      auth: {
        type: 'oauth2',
        tokenUrl: `${gateUrl}/token`,
        clientId: 'bridge',
        clientSecret: 'feed-secret',
        clientAuth: 'client_secret_basic',
      },
    });

  it('a rejected token is refreshed once and the request repeated with the new one', async () => {
    const feed = (await createChangeFeed(oauth(), FAST))!;
    expect(await feed.head()).toBeGreaterThan(0);
    expect(issued).toBe(1);
    valid = undefined; // revoked (or rotated) at the authorization server
    const page = await feed.poll(0, 10);
    expect(page.events.length).toBeGreaterThan(0);
    expect(issued).toBe(2);
    expect(seen.filter((s) => s.path.startsWith('/changes?since')).map((s) => [s.authorization, s.status])).toEqual([
      ['Bearer tok-1', 401],
      ['Bearer tok-2', 200],
    ]);
  });

  it('a token still refused after the refresh fails the request as an auth error, without the secret', async () => {
    const feed = (await createChangeFeed(oauth(), FAST))!;
    await feed.head(); // caches a token
    const cached = valid;
    seen.length = 0;
    const before = issued;
    refuseAll = true;
    try {
      const err = await feed.poll(0, 10).catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 401, kind: 'auth', retryable: false });
      expect((err as Error).message).not.toContain('feed-secret');
      // One refresh per request, not a loop: the cached token, then one new one.
      expect(seen.map((s) => s.authorization)).toEqual([`Bearer ${cached}`, `Bearer tok-${before + 1}`]);
      expect(issued).toBe(before + 1);
    } finally {
      refuseAll = false;
    }
  });
});
