/**
 * The quick start as a newcomer runs it (scripts/quickstart.ts, on free ports and a temporary data folder, the
 * bridge from source): its first status says coverage ok (the PACS's studies counted once each, a sample Orthanc
 * lists twice among them), its Endpoint offers image/jpeg, and the rendered-instance URL it prints returns a JPEG.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import axios from 'axios';
import type { Bundle, Endpoint } from 'fhir/r4';
import { freePort, orthancInstalled } from '../harness/orthanc';

const ROOT = path.resolve(__dirname, '../..');
const READY = 'The bridge is serving';

let child: ChildProcess | undefined;
let out = '';
let dataDir: string;

afterAll(async () => {
  if (child && child.exitCode === null) {
    const ended = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM'); // the quick start stops serve and its Orthanc on SIGTERM
    await ended;
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** Starts the quick start and resolves once it says where to look; rejects if it exits first. */
async function startQuickstart(pacsPort: number, apiPort: number): Promise<void> {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'quickstart-'));
  child = spawn(path.join(ROOT, 'node_modules/.bin/ts-node'), ['--transpile-only', 'scripts/quickstart.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      QUICKSTART_PACS_PORT: String(pacsPort),
      QUICKSTART_API_PORT: String(apiPort),
      QUICKSTART_DATA_DIR: dataDir,
      QUICKSTART_FROM_SOURCE: '1',
      NODE_ENV: 'development',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    child!.stdout!.on('data', (d) => {
      out += d;
      if (out.includes(READY) && out.includes('embedded store')) resolve();
    });
    child!.stderr!.on('data', () => undefined);
    child!.once('exit', (code) => reject(new Error(`quickstart exited with ${code} before serving:\n${out}`)));
  });
}

(orthancInstalled() ? test : test.skip)(
  'the quick start: coverage ok on its first status, an Endpoint with image/jpeg, a printed rendered URL that is a JPEG',
  async () => {
    const [pacsPort, apiPort] = [await freePort(), await freePort()];
    await startQuickstart(pacsPort, apiPort);

    // Its first `status`, after the first sweep: every study the PACS holds, counted once, is synced.
    expect(out).toMatch(/^ {2}coverage: ok$/m);

    const key = /X-API-Key: ([^']+)'/.exec(out)?.[1];
    const rendered = /-o instance\.jpg '([^']+)'/.exec(out)?.[1];
    expect(key).toBeDefined();
    expect(rendered).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${pacsPort}/dicom-web/studies/.+/rendered$`));

    const jpeg = await axios.get<ArrayBuffer>(rendered!, {
      headers: { Accept: 'image/jpeg' },
      responseType: 'arraybuffer',
    });
    expect(jpeg.headers['content-type']).toMatch(/^image\/jpeg/);
    expect([...new Uint8Array(jpeg.data).slice(0, 3)]).toEqual([0xff, 0xd8, 0xff]); // JPEG SOI marker

    const endpoints = await axios.get<Bundle>(`http://127.0.0.1:${apiPort}/fhir/Endpoint`, {
      headers: { 'X-API-Key': key! },
    });
    const [endpoint] = (endpoints.data.entry ?? []).map((e) => e.resource as Endpoint);
    expect(endpoint?.payloadMimeType).toEqual(['application/dicom', 'image/jpeg']);
    expect(endpoint?.address).toBe(`http://127.0.0.1:${pacsPort}/dicom-web`);
  },
  240_000,
);
