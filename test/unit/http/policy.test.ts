/**
 * The shared outbound policy: the timeout rule bounds the whole exchange, and the refused-credentials
 * rule (a refused client is never asked again; a 401 from the resource gets one fresh OAuth2 token).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { authorizedRequest, createAuthorizer } from '../../../src/http/auth';
import { DeadlineError, withDeadline } from '../../../src/http/timeout';

let server: http.Server;
let base: string;
const tokenCalls: Record<string, number> = {};

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const path = req.url ?? '';
    tokenCalls[path] = (tokenCalls[path] ?? 0) + 1;
    res.setHeader('Content-Type', 'application/json');
    if (path === '/refuse') {
      res.writeHead(401);
      return res.end(JSON.stringify({ error: 'invalid_client' }));
    }
    if (path === '/slow') return res.write('{'); // never ends
    res.end(JSON.stringify({ access_token: `t${tokenCalls[path]}`, expires_in: 3600 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  return new Promise((r) => server.close(r));
});

const oauth2 = (path: string, timeoutMs = 2000) =>
  createAuthorizer(
    { type: 'oauth2', tokenUrl: `${base}${path}`, clientId: 'c', clientSecret: 's', clientAuth: 'client_secret_basic' },
    { timeoutMs },
  );
const unauthorized = (e: unknown) => (e as { status?: number }).status === 401;
const refused = Object.assign(new Error('401'), { status: 401 });

describe('the timeout rule', () => {
  it('ends an attempt that never settles at its deadline, and aborts it', async () => {
    let signal: AbortSignal | undefined;
    const started = Date.now();
    const never = withDeadline(100, (s) => {
      signal = s;
      return new Promise(() => {});
    });
    await expect(never).rejects.toBeInstanceOf(DeadlineError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(signal?.aborted).toBe(true);
  });

  it('bounds a token request whose answer never ends (the whole exchange, not an idle socket)', async () => {
    await expect(oauth2('/slow', 300).header()).rejects.toMatchObject({ kind: 'timeout' });
  });
});

describe('refused credentials', () => {
  it('a token endpoint refusing the client is asked once; the request is never sent', async () => {
    const auth = oauth2('/refuse');
    const send = jest.fn();
    await expect(authorizedRequest(auth, unauthorized)(send)).rejects.toMatchObject({ kind: 'refused', status: 401 });
    expect(send).not.toHaveBeenCalled();
    expect(auth.tokenRequests).toBe(1);
  });

  it('a 401 from the resource gets one more try with a fresh OAuth2 token, once per request', async () => {
    const auth = oauth2('/token-a');
    const seen: (string | undefined)[] = [];
    const call = authorizedRequest(auth, unauthorized);
    await expect(
      call(async (authorization) => {
        seen.push(authorization);
        throw refused;
      }),
    ).rejects.toBe(refused);
    expect(seen).toEqual(['Bearer t1', 'Bearer t2']);
    expect(auth.tokenRequests).toBe(2);
  });

  it('a static credential is not tried again after a 401', async () => {
    const auth = createAuthorizer({ type: 'basic', username: 'u', password: 'p' }, { timeoutMs: 1000 });
    const send = jest.fn(async () => Promise.reject(refused));
    await expect(authorizedRequest(auth, unauthorized)(send)).rejects.toBe(refused);
    expect(send).toHaveBeenCalledTimes(1);
    expect(send).toHaveBeenCalledWith(`Basic ${Buffer.from('u:p').toString('base64')}`);
  });
});
