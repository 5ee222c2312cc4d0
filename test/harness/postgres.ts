/**
 * A throwaway PostgreSQL (Debian package `postgresql`, 15 on bookworm) for tests: `initdb` into a temporary folder, the
 * server on a free loopback port with its socket in that folder, removed on stop. Local (socket) logins are
 * trusted; TCP logins need the password, so tests exercise the store's password setting as production does.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { freePort } from './orthanc';

/** PG_BIN, or the newest server Debian installed (/usr/lib/postgresql/<major>/bin; bookworm's is 15). */
function pgBin(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root) ? readdirSync(root).filter((d) => /^\d+$/.test(d)) : [];
  const newest = majors.sort((a, b) => Number(b) - Number(a))[0] ?? '15';
  return path.join(root, newest, 'bin');
}

const PG_BIN = pgBin();
const USER = 'bridge';
const PASSWORD = 'bridge-test-password';

export interface PostgresServer {
  /** postgres://bridge@127.0.0.1:<port>/bridge, without the password. */
  connectionString: string;
  password: string;
  port: number;
  /** Stops the server (fast shutdown) and removes its folder. */
  stop(): Promise<void>;
}

export function postgresInstalled(): boolean {
  return existsSync(path.join(PG_BIN, 'initdb')) && existsSync(path.join(PG_BIN, 'postgres'));
}

/** Why PostgreSQL suites are skipped, or undefined when they can run. */
export function postgresMissing(): string | undefined {
  return postgresInstalled()
    ? undefined
    : `PostgreSQL binaries not found in ${PG_BIN} (run scripts/system-deps.sh, or set PG_BIN)`;
}

/**
 * initdb and postgres refuse to run as root (tests do, here and in CI): then they run as the `postgres`
 * system user the Debian package creates. Node's spawn switches user itself, so no wrapper process stands
 * between the test and the server's signals.
 */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/**
 * A natural-language default collation when the machine has one, as most production databases do: then
 * only the store's own COLLATE "C" columns make its orderings byte-wise, and the tests show they do.
 */
function naturalLocale(): string {
  const available = execFileSync('locale', ['-a'], { encoding: 'utf8' }).split('\n');
  return available.find((l) => /^en_US\.utf-?8$/i.test(l)) ?? 'C';
}

function initdb(dir: string, user: { uid: number; gid: number } | undefined): string {
  const data = path.join(dir, 'data');
  const pwfile = path.join(dir, 'pwfile');
  writeFileSync(pwfile, PASSWORD);
  if (user) execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, dir]);
  const args = ['-D', data, '-U', USER, '--pwfile', pwfile, '--auth-local=trust', '--auth-host=scram-sha-256'];
  execFileSync(path.join(PG_BIN, 'initdb'), [...args, '--no-sync', `--locale=${naturalLocale()}`, '-E', 'UTF8'], {
    ...user,
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return data;
}

async function waitReady(proc: ChildProcess, port: number, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`postgres exited with ${proc.exitCode}:\n${log()}`);
    const client = new Client({ host: '127.0.0.1', port, user: USER, password: PASSWORD, database: 'postgres' });
    try {
      await client.connect();
      await client.query(`CREATE DATABASE ${USER}`);
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) throw new Error(`postgres did not start: ${String(err)}\n${log()}`, { cause: err });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function startPostgres(): Promise<PostgresServer> {
  if (!postgresInstalled()) throw new Error(postgresMissing());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bridge-pg-'));
  chmodSync(dir, 0o700);
  const user = runAs();
  const data = initdb(dir, user);
  const port = await freePort();
  // fsync off and no synchronous commit: a throwaway server, speed over durability.
  const settings = ['listen_addresses=127.0.0.1', 'fsync=off', 'synchronous_commit=off', 'full_page_writes=off'];
  const args = ['-D', data, '-p', String(port), '-k', dir, ...settings.flatMap((s) => ['-c', s])];
  const proc = spawn(path.join(PG_BIN, 'postgres'), args, { ...user, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (b: Buffer) => (output = (output + b.toString()).slice(-8000));
  proc.stdout!.on('data', collect);
  proc.stderr!.on('data', collect);
  // A test process that ends without stop() (a crash, a forced exit) must not leave the server running.
  const orphaned = () => {
    proc.kill('SIGQUIT'); // immediate shutdown
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', orphaned);
  const stop = async () => {
    process.off('exit', orphaned);
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGINT'); // fast shutdown: open sessions are ended, nothing waits for them
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(proc, port, () => output);
  } catch (err) {
    await stop();
    throw err;
  }
  return { connectionString: `postgres://${USER}@127.0.0.1:${port}/${USER}`, password: PASSWORD, port, stop };
}
