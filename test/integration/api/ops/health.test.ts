/**
 * /healthz and /readyz over real dependencies: an Orthanc (stopped and started again), the embedded
 * store (open, then closed), and a FHIR server (@medplum/fhir-router over HTTP, with a bearer token).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import axios from 'axios';
import express from 'express';
import { parseConfig } from '../../../../src/config';
import { createPacsSource } from '../../../../src/dicomweb';
import { createOpsRouter } from '../../../../src/api/ops';
import { createMetrics } from '../../../../src/metrics';
import { openSqliteStore, type SqliteStateStore } from '../../../../src/state';
import { startOrthanc, freePort, type OrthancServer } from '../../../harness/orthanc';
import { startFhirServer, type FhirTestServer } from '../../../harness/fhirServer';

interface Dep {
  name: string;
  kind: string;
  ok: boolean;
  detail: string;
}

let orthanc: OrthancServer;
let fhir: FhirTestServer;
let dir: string;
let store: SqliteStateStore;
const servers: Server[] = [];
const denyAll: express.RequestHandler = (_req, res) => void res.status(401).end();

async function serve(router: express.Router): Promise<string> {
  const app = express();
  app.use(router);
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const get = (url: string) => axios.get(url, { validateStatus: () => true });
const dep = (body: { dependencies: Dep[] }, kind: string, name: string) =>
  body.dependencies.find((d) => d.kind === kind && d.name === name);

function sourceFor(id: string, qidoBase: string) {
  const [cfg] = parseConfig({ sources: [{ id, qidoBase, retries: 0, timeoutMs: 3000 }] }).sources;
  return createPacsSource(cfg);
}

beforeAll(async () => {
  [orthanc, fhir] = await Promise.all([
    startOrthanc(),
    startFhirServer({ auth: { type: 'bearer', token: 'fhir-secret' } }),
  ]);
  dir = mkdtempSync(path.join(os.tmpdir(), 'h7-health-'));
  store = openSqliteStore(path.join(dir, 'bridge.sqlite'));
});

afterAll(async () => {
  servers.forEach((s) => s.closeAllConnections());
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  store?.close();
  await Promise.all([orthanc?.stop(), fhir?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('/healthz answers while every dependency is down', async () => {
  const deadPort = await freePort();
  const base = await serve(
    createOpsRouter({
      store,
      sources: [sourceFor('nowhere', `http://127.0.0.1:${deadPort}/dicom-web`)],
      auth: denyAll,
      metrics: createMetrics(),
    }),
  );
  const res = await get(`${base}/healthz`);
  expect(res.status).toBe(200);
  expect(res.data.status).toBe('ok');
  expect(res.headers['cache-control']).toBe('no-store');
});

test('/readyz: ready with every dependency up; not ready, naming the PACS, while Orthanc is down; ready again after', async () => {
  const base = await serve(
    createOpsRouter({
      store,
      sources: [sourceFor('orthanc', orthanc.dicomWebBase)],
      fhirSinks: [
        { name: 'medplum', config: { baseUrl: fhir.baseUrl, auth: { type: 'bearer', token: 'fhir-secret' } } },
      ],
      auth: denyAll,
      metrics: createMetrics(),
      readinessTimeoutMs: 5000,
    }),
  );

  let res = await get(`${base}/readyz`);
  expect(res.status).toBe(200);
  expect(res.data.status).toBe('ready');
  expect(res.data.dependencies.map((d: Dep) => `${d.kind}:${d.name}:${d.ok}`).sort()).toEqual([
    'fhir:medplum:true',
    'pacs:orthanc:true',
    'store:store:true',
  ]);
  expect(dep(res.data, 'fhir', 'medplum')!.detail).toBe('FHIR 4.0.1');
  expect(dep(res.data, 'store', 'store')!.detail).toMatch(/^writable/);

  await orthanc.kill();
  try {
    res = await get(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(res.data.status).toBe('not ready');
    const pacs = dep(res.data, 'pacs', 'orthanc')!;
    expect(pacs.ok).toBe(false);
    expect(pacs.detail).toMatch(/ECONNREFUSED|unreachable|network|connect/i);
    // The others are still reported, each on its own.
    expect(dep(res.data, 'store', 'store')!.ok).toBe(true);
    expect(dep(res.data, 'fhir', 'medplum')!.ok).toBe(true);
  } finally {
    await orthanc.restart();
  }

  res = await get(`${base}/readyz`);
  expect(res.status).toBe(200);
  expect(dep(res.data, 'pacs', 'orthanc')!.ok).toBe(true);
});

test('/readyz: a FHIR server rejecting the credentials and a store that cannot be written make it not ready', async () => {
  const closed = openSqliteStore(path.join(dir, 'closed.sqlite'));
  closed.close();
  const base = await serve(
    createOpsRouter({
      store: closed,
      sources: [sourceFor('orthanc', orthanc.dicomWebBase)],
      fhirSinks: [
        { name: 'medplum', config: { baseUrl: fhir.baseUrl, auth: { type: 'bearer', token: 'wrong-token' } } },
      ],
      auth: denyAll,
      metrics: createMetrics(),
    }),
  );
  const res = await get(`${base}/readyz`);
  expect(res.status).toBe(503);
  expect(dep(res.data, 'store', 'store')).toMatchObject({ ok: false, detail: 'store is closed' });
  expect(dep(res.data, 'fhir', 'medplum')).toMatchObject({ ok: false, detail: 'HTTP 401: credentials rejected' });
  expect(dep(res.data, 'pacs', 'orthanc')!.ok).toBe(true);
  // No credential ever appears in what the probe says.
  expect(JSON.stringify(res.data)).not.toContain('wrong-token');
});

test('/readyz: a read-only database is not writable', async () => {
  // Root ignores file modes, so read-only is the connection's: the store's own handle, reopened read-only.
  const Database = (await import('better-sqlite3')).default;
  const file = path.join(dir, 'bridge.sqlite');
  const readOnly = { db: new Database(file, { readonly: true }) } as unknown as SqliteStateStore;
  const base = await serve(
    createOpsRouter({
      store: Object.assign(Object.create(store), { db: readOnly.db }),
      sources: [],
      auth: denyAll,
      metrics: createMetrics(),
    }),
  );
  const res = await get(`${base}/readyz`);
  readOnly.db.close();
  expect(res.status).toBe(503);
  expect(dep(res.data, 'store', 'store')).toMatchObject({ ok: false, detail: 'attempt to write a readonly database' });
});
