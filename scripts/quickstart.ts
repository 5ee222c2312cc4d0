/**
 * The quick start's orchestration: a local Orthanc on port 8043 (data in ./data/orthanc) loaded with
 * synthetic studies and Debian's pydicom samples, then the bridge's own executable run against it
 * with the default configuration (config/default.json). Ctrl-C stops everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import axios, { type AxiosInstance } from 'axios';
import { EXIT } from '../src/cli/exitCodes';
import { startOrthanc } from '../test/harness/orthanc';
import { generateCorpus, loadStudies } from '../test/fixtures/synthetic';
import { loadPydicomSamples } from '../test/fixtures/pydicomSamples';

// Not 8042: a packaged Orthanc service, which apt may have started, listens there.
const PORT = Number(process.env.QUICKSTART_PACS_PORT ?? 8043);
const root = path.resolve(__dirname, '..');
// Where the PACS's files, the store and the audit log go; a test gives a temporary folder.
const dataDir = path.resolve(process.env.QUICKSTART_DATA_DIR ?? path.join(root, 'data'));
// The built executable, as an operator runs it; QUICKSTART_FROM_SOURCE=1 runs src/ through ts-node (tests).
const cliCommand = process.env.QUICKSTART_FROM_SOURCE
  ? [path.join(root, 'node_modules/.bin/ts-node'), '--transpile-only', path.join(root, 'src/cli/main.ts')]
  : [process.execPath, path.join(root, 'dist/cli/main.js')];

// A fresh API key each run, given to the bridge hashed (as a hospital would configure it) through
// NODE_CONFIG, which the `config` package merges over config/default.json.
const apiKey = randomBytes(18).toString('base64url');
const apiPort = Number(process.env.QUICKSTART_API_PORT ?? 8080);
const dicomWeb = `http://127.0.0.1:${PORT}/dicom-web`;
// `config` replaces arrays whole, so the quick start's source starts from config/default.json's own (its
// renderedMimeTypes, time zone, …) and changes only where the local PACS is.
const defaults = JSON.parse(readFileSync(path.join(root, 'config/default.json'), 'utf8')) as {
  sources: Record<string, unknown>[];
};
const env = {
  ...process.env,
  NODE_CONFIG: JSON.stringify({
    // Some pydicom Secondary Capture samples lack Modality: map them as OT "Other" (with a warning), not dead letters.
    sources: [
      { ...defaults.sources[0], qidoBase: dicomWeb, publicWadoBase: dicomWeb, mapping: { missingModality: 'OT' } },
    ],
    // The samples span decades (pydicom's files are from the 1990s on): the first sync reaches back that far.
    // The first `sync --once --sweep` lists every StudyDate and the undated samples; the local PACS is ours,
    // so the sweep is unpaced.
    sync: { backfillFrom: '19000101', windowDays: 3660, sweep: { maxRequestsPerMinute: 100000 } },
    store: { path: path.join(dataDir, 'bridge.sqlite') },
    api: {
      port: apiPort,
      audit: { destination: path.join(dataDir, 'audit.log') },
      auth: {
        type: 'apiKey',
        keys: [
          {
            client: 'quickstart',
            sha256: createHash('sha256').update(apiKey).digest('hex'),
            scopes: ['system/ImagingStudy.read', 'system/Endpoint.read', 'bridge/admin'],
          },
        ],
      },
    },
  }),
};

function cliProcess(args: string[]): ChildProcess {
  const [command, ...prefix] = cliCommand;
  return spawn(command!, [...prefix, ...args], { stdio: 'inherit', cwd: root, env });
}

function runCli(args: string[]): Promise<number> {
  return new Promise((resolve) => cliProcess(args).on('exit', (code) => resolve(code ?? 1)));
}

async function main() {
  const up = await axios.get(`http://127.0.0.1:${PORT}/system`, { timeout: 1000 }).then(
    () => true,
    () => false,
  );
  if (up) throw new Error(`port ${PORT} is already in use; stop what runs there or set QUICKSTART_PACS_PORT`);
  const storageDir = path.join(dataDir, 'orthanc');
  mkdirSync(storageDir, { recursive: true });
  const orthanc = await startOrthanc({ port: PORT, storageDir });
  let server: ChildProcess | undefined;
  const stop = async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    await orthanc.kill();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // A quick start that fails half-way leaves neither the PACS nor the server running behind it.
  cleanUp = async () => {
    if (server && server.exitCode === null) server.kill('SIGTERM');
    await orthanc.kill();
  };

  const { data: stats } = await orthanc.rest.get('/statistics');
  if (Number(stats.CountStudies) === 0) {
    const studies = generateCorpus({ seed: 20261127, studies: 40, undated: 3 });
    await loadStudies(orthanc, studies);
    const samples = await loadPydicomSamples(orthanc);
    console.log(
      `Loaded ${studies.length} synthetic studies and ${samples.filter((s) => s.accepted).length} pydicom sample files.`,
    );
  }
  console.log(`\nLocal PACS (Orthanc): ${orthanc.restUrl}/app/explorer.html  DICOMweb: ${orthanc.dicomWebBase}\n`);

  for (const args of [['discover'], ['sync', '--once', '--sweep'], ['status']]) {
    const code = await runCli(args);
    // A partial sync (a sample study the bridge cannot sync) is worth serving still: status lists what failed,
    // and says so with its exit status (unhealthy: a dead-lettered sample study).
    const expected = { sync: EXIT.partial, status: EXIT.unhealthy } as Record<string, number>;
    if (code !== EXIT.ok && code !== expected[args[0]!]) throw new Error(`${args.join(' ')} exited with ${code}`);
  }
  server = cliProcess(['serve']);
  server.on('exit', (code) => {
    console.error(`serve exited with ${code}`);
    void orthanc.kill().then(() => process.exit(code ?? 1));
  });
  const api = `http://127.0.0.1:${apiPort}`;
  await listening(`${api}/healthz`);
  // Only a hint on the way out: a PACS that cannot render must not stop the quick start.
  const rendered = await renderedInstanceUrl(orthanc.rest).catch(() => undefined);
  console.log(`
The bridge is serving (Ctrl-C stops it and the PACS). Where to look:
  status page     ${api}/status
  health          ${api}/readyz
  metrics         ${api}/metrics
  FHIR API        curl -H 'X-API-Key: ${apiKey}' '${api}/fhir/ImagingStudy?started=ge2000-01-01&modality=CT'
                  curl -H 'X-API-Key: ${apiKey}' '${api}/fhir/metadata'
  rendered image  ${rendered ? `curl -H 'Accept: image/jpeg' -o instance.jpg '${rendered}'` : '(no instance renders as JPEG)'}
                  (WADO-RS rendered retrieval from the Endpoint's address; its payloadMimeType lists image/jpeg)
  embedded store  ${path.join(dataDir, 'bridge.sqlite')}
`);
}

/**
 * A WADO-RS rendered-instance URL (…/studies/{s}/series/{se}/instances/{i}/rendered) that the PACS answers with a
 * JPEG, tried on the first few instances Orthanc holds (some samples hold no pixel data it can render).
 */
async function renderedInstanceUrl(rest: AxiosInstance): Promise<string | undefined> {
  // Orthanc pages /instances only with both `since` and `limit`.
  const { data: ids } = await rest.get<string[]>('/instances', { params: { since: 0, limit: 20 } });
  for (const id of ids) {
    const { data: tags } = await rest.get<Record<string, string>>(`/instances/${id}/tags?simplify`);
    const url = `${dicomWeb}/studies/${tags.StudyInstanceUID}/series/${tags.SeriesInstanceUID}/instances/${tags.SOPInstanceUID}/rendered`;
    const answer = await axios.get(url, {
      headers: { Accept: 'image/jpeg' },
      responseType: 'arraybuffer',
      validateStatus: () => true,
    });
    if (answer.status === 200 && String(answer.headers['content-type']).startsWith('image/jpeg')) return url;
  }
  return undefined;
}

/** Waits until `serve` answers, so the URLs printed next work when they are read. */
async function listening(url: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (
    !(await axios.get(url, { timeout: 1000 }).then(
      () => true,
      () => false,
    ))
  ) {
    if (Date.now() > deadline) throw new Error(`serve did not answer ${url} within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

let cleanUp: (() => Promise<void>) | undefined;

main().catch(async (err) => {
  console.error(`quickstart: ${err instanceof Error ? err.message : err}`);
  await cleanUp?.().catch(() => undefined);
  process.exit(1);
});
