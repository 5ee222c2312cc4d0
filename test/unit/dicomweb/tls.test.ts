/**
 * TLS to a PACS: a private CA bundle on top of Node's, a client certificate for mutual TLS, and
 * bounded concurrency per source. Certificates are made with openssl for this test run.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../../src/config';
import { createPacsSource } from '../../../src/dicomweb';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pacs-tls-'));
const file = (name: string) => path.join(dir, name);
const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

function makeCertificates(): void {
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=Test PACS CA',
  );
  for (const [name, cn, ext] of [
    ['server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1'],
    ['client', 'bridge', 'extendedKeyUsage=clientAuth'],
  ]) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    fs.writeFileSync(file(`${name}.ext`), `${ext}\n`);
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    );
  }
}

let server: https.Server;
let base: string;
const clientNames: string[] = [];

beforeAll(async () => {
  makeCertificates();
  server = https.createServer(
    {
      key: fs.readFileSync(file('server.key')),
      cert: fs.readFileSync(file('server.pem')),
      ca: fs.readFileSync(file('ca.pem')),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => {
      const socket = req.socket as import('node:tls').TLSSocket;
      if (!socket.authorized) {
        res.writeHead(403).end();
        return;
      }
      clientNames.push(socket.getPeerCertificate().subject.CN as string);
      res
        .writeHead(200, { 'Content-Type': 'application/dicom+json' })
        .end(JSON.stringify([{ '0020000D': { vr: 'UI', Value: ['1.2.3'] } }]));
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}/dicom-web`;
}, 30_000);

afterAll(async () => {
  await new Promise((r) => server.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

const source = (tls: Record<string, unknown>) =>
  createPacsSource(parseConfig({ sources: [{ id: 'tls-pacs', qidoBase: base, retries: 0, tls }] }).sources[0]);

describe('TLS', () => {
  it('trusts the configured CA bundle and presents the client certificate', async () => {
    const s = source({ caFile: file('ca.pem'), certFile: file('client.pem'), keyFile: file('client.key') });
    expect(await s.searchStudies({})).toEqual([{ '0020000D': { vr: 'UI', Value: ['1.2.3'] } }]);
    expect(clientNames.at(-1)).toBe('bridge');
  });

  it('refuses a server signed by an unknown CA (network error, no data)', async () => {
    const s = createPacsSource(parseConfig({ sources: [{ id: 'tls-pacs', qidoBase: base, retries: 3 }] }).sources[0]);
    await expect(s.searchStudies({})).rejects.toMatchObject({
      kind: 'network',
      retryable: false,
      message: expect.stringContaining('sources[].tls'),
    });
    expect(s.stats.retries).toBe(0);
  });

  it('without the client certificate the PACS refuses access (403 → auth)', async () => {
    await expect(source({ caFile: file('ca.pem') }).searchStudies({})).rejects.toMatchObject({
      kind: 'auth',
      status: 403,
    });
  });

  it('an unreadable CA file is a clear configuration error', () => {
    expect(() => source({ caFile: file('missing.pem') })).toThrow(/tls-pacs.*tls\.caFile/);
  });
});

describe('bounded concurrency', () => {
  it('never has more requests in flight than `concurrency`', async () => {
    let inFlight = 0;
    let most = 0;
    const slow = http.createServer((_req, res) => {
      most = Math.max(most, ++inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(200, { 'Content-Type': 'application/dicom+json' }).end('[]');
      }, 20);
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`;
    const s = createPacsSource(parseConfig({ sources: [{ id: 'busy', qidoBase: url, concurrency: 3 }] }).sources[0]);
    await Promise.all(Array.from({ length: 12 }, () => s.searchStudies({})));
    await new Promise((r) => slow.close(r));
    expect(most).toBe(3);
  });
});
