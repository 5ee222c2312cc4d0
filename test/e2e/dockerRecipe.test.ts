/**
 * The Docker image's recipe, proven without a Docker engine: every step of the Dockerfile is performed
 * in a temporary folder (npm ci, build, prune to production dependencies, the runtime stage's copies),
 * then the image's ENTRYPOINT + CMD start as a non-root user with a test configuration from the
 * environment, its HEALTHCHECK passes, /readyz sees a real Orthanc, and SIGTERM stops it cleanly.
 *
 * better-sqlite3 is the one native module: unless FULL_DOCKER_RECIPE=1, `npm ci` installs it from a
 * local prebuild of the very binary this checkout built (as a Docker layer cache would) instead of
 * compiling SQLite again, which alone takes minutes.
 *
 * The stages run on the Node that runs this suite; .ci/run runs it on Node 24 too, the image's own Node, whose
 * version is pinned alike in the Dockerfile and in scripts/with-node24.sh (checked here).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import axios from 'axios';
import { parseDockerfile, performDockerfile, type Stage } from './dockerfile';
import { freePort, startOrthanc, type OrthancServer } from '../harness/orthanc';

const REPO = path.resolve(__dirname, '../..');
/** The uid:gid of the `node` user in the official node images. */
const NODE_USER = { uid: 1000, gid: 1000 };

let workspace: string;
let runtime: Stage;
let appDir: string;
let orthanc: OrthancServer;
const children: ChildProcess[] = [];

function localPrebuild(dir: string): Record<string, string> {
  if (process.env.FULL_DOCKER_RECIPE === '1') return {};
  const pkgFile = path.join(REPO, 'node_modules/better-sqlite3/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { version: string };
  const name = `better-sqlite3-v${pkg.version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['czf', path.join(dir, name), 'build/Release/better_sqlite3.node'], {
    cwd: path.join(REPO, 'node_modules/better-sqlite3'),
  });
  return { npm_config_better_sqlite3_local_prebuilds: dir };
}

const userExists = (name: string) => {
  try {
    execFileSync('id', [name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** Runs a command as the image's USER would (setpriv to the node user's ids when this runs as root). */
function asImageUser(command: string[]): string[] {
  if (process.getuid?.() !== 0) return command;
  return ['setpriv', `--reuid=${NODE_USER.uid}`, `--regid=${NODE_USER.gid}`, '--clear-groups', ...command];
}

/** The image's ENV, with container paths mapped into the runtime stage's folder. */
function imageEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: os.tmpdir() };
  for (const [k, v] of Object.entries(runtime.env)) env[k] = v.startsWith('/') ? path.join(runtime.root, v) : v;
  return { ...env, ...extra };
}

function start(
  args: string[],
  env: NodeJS.ProcessEnv,
): { proc: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const [cmd, ...rest] = asImageUser(args);
  const proc = spawn(cmd, rest, { cwd: appDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let output = '';
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, output: () => output, exited };
}

async function waitForHealthz(url: string, proc: ChildProcess, output: () => string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null) throw new Error(`serve exited with ${proc.exitCode}:\n${output()}`);
    try {
      if ((await axios.get(url, { timeout: 1000 })).status === 200) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no answer from ${url}:\n${output()}`);
}

beforeAll(async () => {
  workspace = mkdtempSync(path.join(os.tmpdir(), 'h7-docker-'));
  chmodSync(workspace, 0o755); // the image's non-root user must reach its files
  const stages = performDockerfile(path.join(REPO, 'Dockerfile'), {
    context: REPO,
    workspace,
    runEnv: localPrebuild(path.join(workspace, 'prebuilds')),
    // This machine has no `node` user; its ids in the node images are 1000:1000.
    rewriteRun: (c) => (userExists('node') ? c : c.replace(/\bnode:node\b/g, `${NODE_USER.uid}:${NODE_USER.gid}`)),
  });
  runtime = stages[stages.length - 1];
  appDir = path.join(runtime.root, runtime.workdir);
  orthanc = await startOrthanc();
}, 15 * 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await orthanc?.stop();
  if (workspace) rmSync(workspace, { recursive: true, force: true });
});

test("the image runs the Node 24 LTS, pinned to the minor version CI tests on, which package.json's engines admits", async () => {
  const images = parseDockerfile(readFileSync(path.join(REPO, 'Dockerfile'), 'utf8'))
    .filter((i) => i.op === 'FROM')
    .map((i) => i.args.split(/\s+/)[0]);
  expect(images).toEqual([
    expect.stringMatching(/^node:24\.\d+-bookworm$/),
    expect.stringMatching(/^node:24\.\d+-bookworm-slim$/),
  ]);
  const minor = (image: string) => /^node:(\d+\.\d+)-/.exec(image)![1];
  expect(minor(images[1])).toBe(minor(images[0]));
  const ci = /^NODE24_VERSION=(\d+\.\d+)\.\d+$/m.exec(readFileSync(path.join(REPO, 'scripts/with-node24.sh'), 'utf8'));
  expect(ci?.[1]).toBe(minor(images[0]));
  const engines = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')).engines.node as string;
  const least = Number(/^>=\s*(\d+)$/.exec(engines)?.[1]);
  expect(least).toBeLessThanOrEqual(20); // the machines here run Node 20
});

test('the runtime stage holds the built output and production dependencies only, for a non-root user', async () => {
  expect(runtime.user).toBeDefined();
  expect(runtime.user).not.toMatch(/^(root|0)$/);
  expect(runtime.healthcheck?.command.length).toBeGreaterThan(0);
  expect([...(runtime.entrypoint ?? []), ...(runtime.cmd ?? [])]).toEqual(['node', 'dist/cli/main.js', 'serve']);
  expect(runtime.env.NODE_ENV).toBe('production');

  expect(existsSync(path.join(appDir, 'dist/cli/main.js'))).toBe(true);
  expect(existsSync(path.join(appDir, 'config/default.json'))).toBe(true);
  // The profile guard is on by default: its definitions ship in the image.
  expect(existsSync(path.join(appDir, 'profiles/twcore-0.3.2/StructureDefinition-ImagingStudy-twcore.json'))).toBe(
    true,
  );
  expect(existsSync(path.join(appDir, 'profiles/r4-core.json'))).toBe(true);
  for (const absent of ['src', 'test', 'bench', 'tsconfig.json', '.git'])
    expect(existsSync(path.join(appDir, absent))).toBe(false);

  const modules = new Set(readdirSync(path.join(appDir, 'node_modules')));
  for (const prod of ['express', 'better-sqlite3', 'prom-client', 'pino', 'config', 'zod', 'dicomweb-client'])
    expect(modules).toContain(prod);
  for (const dev of ['jest', 'typescript', 'ts-jest', 'ts-node', 'playwright-core', 'dcmjs', 'fast-check'])
    expect(modules).not.toContain(dev);
  expect(existsSync(path.join(appDir, 'node_modules/@medplum/fhir-router'))).toBe(false);

  // The data volume belongs to the image's user.
  const data = statSync(path.join(runtime.root, runtime.volumes[0]));
  expect(data.uid).toBe(userExists('node') ? Number(execFileSync('id', ['-u', 'node']).toString()) : NODE_USER.uid);
});

test('the image starts with configuration from the environment, passes its HEALTHCHECK, is ready against a PACS, and stops on SIGTERM', async () => {
  const port = await freePort();
  const env = imageEnv({
    API_PORT: String(port),
    BRIDGE_SOURCES: JSON.stringify([{ id: 'pacs', qidoBase: orthanc.dicomWebBase, auth: { type: 'none' } }]),
    LOG_LEVEL: 'info',
  });
  const serve = start([...runtime.entrypoint!, ...runtime.cmd!], env);
  await waitForHealthz(`http://127.0.0.1:${port}/healthz`, serve.proc, serve.output);

  // The image's own HEALTHCHECK command, as Docker would run it inside the container.
  const health = start(runtime.healthcheck!.command, env);
  expect(await health.exited).toBe(0);

  const ready = await axios.get(`http://127.0.0.1:${port}/readyz`, { validateStatus: () => true });
  expect(ready.status).toBe(200);
  expect(ready.data.dependencies).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ kind: 'pacs', name: 'pacs', ok: true }),
      expect.objectContaining({ kind: 'store', ok: true }),
    ]),
  );
  const metrics = await axios.get(`http://127.0.0.1:${port}/metrics`);
  expect(metrics.data).toContain('pacs_fhir_bridge_sync_lag_seconds');
  // The store was created in the data volume by the non-root user.
  expect(existsSync(path.join(runtime.root, runtime.volumes[0], 'bridge.sqlite'))).toBe(true);
  expect(existsSync(path.join(runtime.root, runtime.volumes[0], 'audit.log'))).toBe(true);

  serve.proc.kill('SIGTERM');
  expect(await serve.exited).toBe(0);
  // Production logs are JSON lines.
  const lines = serve
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'));
  expect(lines.map((l) => JSON.parse(l).msg)).toEqual(expect.arrayContaining(['pacs-fhir-bridge serving', 'stopped']));

  const after = start(runtime.healthcheck!.command, env);
  expect(await after.exited).toBe(1);
});

test('a bad configuration stops the image at start-up with every problem listed', async () => {
  const env = imageEnv({
    API_PORT: String(await freePort()),
    BRIDGE_SOURCES: JSON.stringify([{ id: 'bad id!', qidoBase: 'not a url' }]),
  });
  const serve = start([...runtime.entrypoint!, ...runtime.cmd!], env);
  expect(await serve.exited).toBe(78);
  expect(serve.output()).toMatch(/Invalid configuration \(2 problems\)/);
  expect(serve.output()).toContain('sources.0.id');
  expect(serve.output()).toContain('sources.0.qidoBase');
});
