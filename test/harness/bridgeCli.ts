/**
 * The bridge as operators run it, for tests: the real CLI (src/cli/main.ts through ts-node) in a child process,
 * configured through the `config` package from a folder of its own, its output collected.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const TS_NODE = path.join(ROOT, 'node_modules/.bin/ts-node');

export interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface BridgeChild {
  child: ChildProcess;
  /** Settles once the process has exited and its output is closed. */
  done: Promise<Ended>;
}

/** Starts `pacs-fhir-bridge <args>` with NODE_CONFIG_DIR `configDir` (NODE_ENV production) and `env` on top. */
export function startBridge(configDir: string, args: string[], env: Record<string, string> = {}): BridgeChild {
  const child = spawn(TS_NODE, ['--transpile-only', 'src/cli/main.ts', ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_CONFIG_DIR: configDir,
      NODE_ENV: 'production',
      SUPPRESS_NO_CONFIG_WARNING: '1',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Ended>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}
