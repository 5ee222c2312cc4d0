/**
 * A real Orthanc (Debian packages `orthanc`, `orthanc-dicomweb`) for tests: its own loopback ports,
 * a temporary storage folder, the DICOMweb plugin on, UTF-8 by default. Fixtures go in through
 * Orthanc's REST API. Tests needing other settings (auth, LimitFindResults) pass `options`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import axios, { type AxiosInstance } from 'axios';

const ORTHANC_BIN = process.env.ORTHANC_BIN ?? '/usr/sbin/Orthanc';
const DICOMWEB_PLUGIN = process.env.ORTHANC_DICOMWEB_PLUGIN ?? '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

export interface OrthancOptions {
  /** HTTP Basic users; when set, authentication is enabled. */
  users?: Record<string, string>;
  /** Orthanc's cap on C-FIND/QIDO answers (0 = unlimited). */
  limitFindResults?: number;
  /**
   * Seconds without a new instance before Orthanc calls a study stable (StableStudy in /changes).
   * Orthanc's default is 60; change-feed tests use 1.
   */
  stableAge?: number;
  /** Any further top-level Orthanc settings. */
  extra?: Record<string, unknown>;
  /** Reuse this storage folder (to restart on the same data). */
  storageDir?: string;
  /** A fixed HTTP port (the quick start's local PACS); tests leave it to a free one. */
  port?: number;
}

export interface OrthancServer {
  /** http://127.0.0.1:<port> — Orthanc's REST root. */
  restUrl: string;
  /** http://127.0.0.1:<port>/dicom-web — QIDO-RS/WADO-RS base. */
  dicomWebBase: string;
  port: number;
  storageDir: string;
  /** REST client, authenticated when users are configured. */
  rest: AxiosInstance;
  /** The running process's id (benchmarks read its CPU time). */
  pid(): number | undefined;
  /** Upload one DICOM Part 10 file; returns Orthanc's answer (ID, ParentStudy, …). */
  upload(file: Buffer): Promise<{ ID: string; ParentStudy: string; Status: string }>;
  /** Stop the process, keeping the storage (for restart tests). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start again on the same port and storage. */
  restart(): Promise<void>;
  /** Stop and remove the storage. */
  stop(): Promise<void>;
}

export function orthancInstalled(): boolean {
  return existsSync(ORTHANC_BIN) && existsSync(DICOMWEB_PLUGIN);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function orthancConfig(port: number, dicomPort: number, storageDir: string, options: OrthancOptions) {
  const users = options.users ?? {};
  return {
    Name: 'pacs-fhir-bridge-test',
    StorageDirectory: path.join(storageDir, 'db'),
    IndexDirectory: path.join(storageDir, 'db'),
    HttpPort: port,
    DicomPort: dicomPort,
    DicomServerEnabled: false,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: Object.keys(users).length > 0,
    RegisteredUsers: users,
    DefaultEncoding: 'Utf8',
    LimitFindResults: options.limitFindResults ?? 0,
    LimitFindInstances: 0,
    StorageCompression: false,
    ...(options.stableAge !== undefined ? { StableAge: options.stableAge } : {}),
    // Keep start-up quiet and fast: no Lua, no jobs restored from a previous run.
    SaveJobs: false,
    HttpTimeout: 60,
    Plugins: [DICOMWEB_PLUGIN],
    DicomWeb: {
      Enable: true,
      Root: '/dicom-web/',
      EnableWado: false,
      Ssl: false,
      StudiesMetadata: 'Full',
      SeriesMetadata: 'Full',
    },
    ...options.extra,
  };
}

async function waitUntilUp(rest: AxiosInstance, proc: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`Orthanc exited with ${proc.exitCode}:\n${log()}`);
    try {
      await rest.get('/system', { timeout: 1000 });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`Orthanc did not answer within 30 s:\n${log()}`);
}

export async function startOrthanc(options: OrthancOptions = {}): Promise<OrthancServer> {
  if (!orthancInstalled()) {
    throw new Error(
      `Orthanc is not installed (${ORTHANC_BIN}, ${DICOMWEB_PLUGIN}); run "npm test", which installs it.`,
    );
  }
  const storageDir = options.storageDir ?? mkdtempSync(path.join(os.tmpdir(), 'orthanc-test-'));
  const port = options.port ?? (await freePort());
  const dicomPort = await freePort();
  const configFile = path.join(storageDir, 'orthanc.json');
  writeFileSync(configFile, JSON.stringify(orthancConfig(port, dicomPort, storageDir, options), null, 2));

  const [user, password] = Object.entries(options.users ?? {})[0] ?? [];
  const restUrl = `http://127.0.0.1:${port}`;
  const rest = axios.create({
    baseURL: restUrl,
    auth: user ? { username: user, password: password! } : undefined,
    maxBodyLength: Infinity,
    maxContentLength: Infinity,
  });

  let proc: ChildProcess;
  let output = '';
  const launch = async () => {
    output = '';
    proc = spawn(ORTHANC_BIN, [configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d) => (output = (output + d).slice(-8000)));
    proc.stderr!.on('data', (d) => (output = (output + d).slice(-8000)));
    await waitUntilUp(rest, proc, () => output);
  };
  await launch();

  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill(signal);
    await exited;
  };

  return {
    restUrl,
    dicomWebBase: `${restUrl}/dicom-web`,
    port,
    storageDir,
    rest,
    pid: () => proc.pid,
    async upload(file: Buffer) {
      const res = await rest.post('/instances', file, { headers: { 'Content-Type': 'application/dicom' } });
      return res.data;
    },
    kill,
    restart: async () => {
      await kill();
      await launch();
    },
    stop: async () => {
      await kill();
      if (!options.storageDir) rmSync(storageDir, { recursive: true, force: true });
    },
  };
}
