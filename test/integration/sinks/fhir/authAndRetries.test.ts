/**
 * Authentication (static bearer, OAuth2 client credentials) and transient failures (429/503 with
 * Retry-After, dropped connections) injected by a proxy in front of a real FHIR engine.
 */
import type { ImagingStudy } from 'fhir/r4';
import { createFhirSink, type FhirSinkInput } from '../../../../src/sinks/fhir';
import { startFaultProxy, type FaultProxy } from '../../../harness/faultProxy';
import { startFhirServer, type FhirTestServer } from '../../../harness/fhirServer';
import { studyWrite, uids } from './studies';

const storedUids = async (server: FhirTestServer) =>
  (await server.all<ImagingStudy>('ImagingStudy'))
    .map((s) => s.identifier!.find((i) => i.system === 'urn:dicom:uid')!.value!.slice(8))
    .sort();

describe('static bearer token', () => {
  let server: FhirTestServer;
  beforeAll(async () => {
    server = await startFhirServer({ auth: { type: 'bearer', token: 'right-token' } });
  });
  afterAll(() => server?.stop());

  it('a wrong token gives a clear, retryable error and writes nothing; the right one writes it all', async () => {
    const batch = uids('1.2.7.1', 3).map((uid) => studyWrite(uid));
    const wrong = createFhirSink({ baseUrl: server.baseUrl, auth: { type: 'bearer', token: 'wrong-token' } });
    const outcomes = await wrong.writeBatch(batch);
    for (const o of outcomes) {
      expect(o).toMatchObject({ ok: false, retryable: true });
      expect(!o.ok && o.error).toMatch(
        /rejected the credentials \(401: error: invalid bearer token\) — check sinks\.fhir\.auth/,
      );
    }
    expect(await storedUids(server)).toEqual([]);
    // A static token cannot be refreshed: no second attempt.
    expect(wrong.stats().authRetries).toBe(0);

    const right = createFhirSink({ baseUrl: server.baseUrl, auth: { type: 'bearer', token: 'right-token' } });
    expect((await right.writeBatch(batch)).every((o) => o.ok)).toBe(true);
    expect(await storedUids(server)).toEqual(batch.map((w) => w.studyUid).sort());
  });
});

describe('OAuth2 client credentials', () => {
  let server: FhirTestServer;
  beforeAll(async () => {
    server = await startFhirServer({ auth: { type: 'oauth2', clients: { bridge: 's3cret:&=' }, tokenTtlSeconds: 2 } });
  });
  afterAll(() => server?.stop());
  beforeEach(() => server.resetRequests());

  const oauthSink = (clientAuth: 'client_secret_basic' | 'client_secret_post', secret = 's3cret:&=') =>
    createFhirSink({
      baseUrl: server.baseUrl,
      auth: { type: 'oauth2', tokenUrl: server.tokenUrl, clientId: 'bridge', clientSecret: secret, clientAuth },
    });

  it.each(['client_secret_basic', 'client_secret_post'] as const)(
    'gets a token with %s, caches it, and writes',
    async (clientAuth) => {
      const sink = oauthSink(clientAuth);
      const first = await sink.writeBatch([studyWrite(`1.2.7.2.${clientAuth.length}`)]);
      const second = await sink.writeBatch([studyWrite(`1.2.7.3.${clientAuth.length}`)]);
      expect([...first, ...second].every((o) => o.ok)).toBe(true);
      expect(server.tokenRequests().map((t) => [t.clientAuth, t.status])).toEqual([[clientAuth, 200]]);
      expect(sink.stats().tokenRequests).toBe(1);
    },
  );

  it('after a 401 (token revoked) fetches a fresh token and retries once', async () => {
    const sink = oauthSink('client_secret_basic');
    await sink.writeBatch([studyWrite('1.2.7.4.1')]);
    server.revokeTokens();
    const [o] = await sink.writeBatch([studyWrite('1.2.7.4.2')]);
    expect(o.ok).toBe(true);
    expect(sink.stats()).toMatchObject({ tokenRequests: 2, authRetries: 1 });
    expect(server.requests.filter((r) => r.status === 401)).toHaveLength(1);
  });

  it('renews a token before it expires', async () => {
    const sink = oauthSink('client_secret_post');
    await sink.writeBatch([studyWrite('1.2.7.5.1')]);
    await new Promise((r) => setTimeout(r, 2100)); // the 2 s token has expired
    const [o] = await sink.writeBatch([studyWrite('1.2.7.5.2')]);
    expect(o.ok).toBe(true);
    expect(sink.stats()).toMatchObject({ tokenRequests: 2, authRetries: 0 });
    expect(server.requests.filter((r) => r.status === 401)).toHaveLength(0);
  });

  it('a wrong client secret gives a clear, retryable error', async () => {
    const sink = oauthSink('client_secret_basic', 'wrong');
    const [o] = await sink.writeBatch([studyWrite('1.2.7.6.1')]);
    expect(o).toMatchObject({ ok: false, retryable: true });
    expect(!o.ok && o.error).toMatch(/OAuth2 token request to .*oauth2\/token failed \(401\): invalid_client/);
  });
});

describe('429, 503 and network errors injected in front of the server', () => {
  let server: FhirTestServer;
  let proxy: FaultProxy;
  beforeAll(async () => {
    server = await startFhirServer();
    proxy = await startFaultProxy(server.baseUrl);
  });
  afterAll(async () => {
    await proxy?.stop();
    await server?.stop();
  });
  beforeEach(async () => {
    server.repo.clear();
    proxy.clearFaults();
    proxy.requests.splice(0);
  });

  // A tiny backoff: any wait near a second below can only come from Retry-After.
  const sinkVia = (extra: Partial<FhirSinkInput> = {}) =>
    createFhirSink({ baseUrl: proxy.via(server.baseUrl), backoffMs: 5, maxBackoffMs: 20, ...extra });
  const isTransaction = (r: { method: string; path: string }) => r.method === 'POST' && r.path === '/fhir/R4';
  const gaps = (times: number[]) => times.slice(1).map((t, i) => t - times[i]);

  it('retries a 429 honouring Retry-After in seconds', async () => {
    const sink = sinkVia();
    await sink.check();
    proxy.inject({ status: 429, retryAfter: '1', times: 2, match: isTransaction });
    const outcomes = await sink.writeBatch(uids('1.2.7.7', 3).map((uid) => studyWrite(uid)));
    expect(outcomes.every((o) => o.ok)).toBe(true);
    const attempts = proxy.requests.filter(isTransaction);
    expect(attempts.map((a) => a.status)).toEqual([429, 429, 200]);
    for (const gap of gaps(attempts.map((a) => a.at))) expect(gap).toBeGreaterThanOrEqual(900);
    expect(sink.stats().retries).toBe(2);
    expect(await storedUids(server)).toHaveLength(3);
  });

  it('retries a 503 honouring Retry-After as an HTTP date', async () => {
    const sink = sinkVia();
    await sink.check();
    proxy.inject({ status: 503, retryAfter: new Date(Date.now() + 2000).toUTCString(), match: isTransaction });
    const [o] = await sink.writeBatch([studyWrite('1.2.7.8.1')]);
    expect(o.ok).toBe(true);
    const attempts = proxy.requests.filter(isTransaction);
    expect(attempts.map((a) => a.status)).toEqual([503, 200]);
    expect(gaps(attempts.map((a) => a.at))[0]).toBeGreaterThanOrEqual(900);
  });

  it('retries a dropped connection', async () => {
    const sink = sinkVia();
    await sink.check();
    proxy.inject({ reset: true, match: isTransaction });
    const [o] = await sink.writeBatch([studyWrite('1.2.7.9.1')]);
    expect(o.ok).toBe(true);
    expect(proxy.requests.filter(isTransaction).map((a) => a.injected ?? a.status)).toEqual(['reset', 200]);
  });

  it('gives up after the configured retries with retryable outcomes, losing nothing', async () => {
    const sink = sinkVia({ retries: 2 });
    await sink.check();
    proxy.inject({ status: 503, times: 10, match: isTransaction });
    const batch = uids('1.2.7.10', 4).map((uid) => studyWrite(uid));
    const outcomes = await sink.writeBatch(batch);
    for (const o of outcomes) {
      expect(o).toMatchObject({ ok: false, retryable: true });
      expect(!o.ok && o.error).toMatch(/transaction failed with 503 after 3 attempts: error: injected 503/);
    }
    // A 503 is not the studies' fault: the batch is not split.
    expect(proxy.requests.filter(isTransaction)).toHaveLength(3);
    expect(await storedUids(server)).toEqual([]);

    proxy.clearFaults();
    expect((await sink.writeBatch(batch)).every((o) => o.ok)).toBe(true);
    expect(await storedUids(server)).toEqual(batch.map((w) => w.studyUid).sort());
  });
});
