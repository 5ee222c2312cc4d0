/**
 * The bridge as operators run it: the built executable (dist/cli/main.js) in its own process, configured
 * through the `config` package, printing its run summary as JSON. Peak RSS and CPU time come from
 * reportUsage.js preloaded into that process.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunSummary } from '../src/sync';

const ROOT = path.resolve(__dirname, '..');
const MAIN = path.join(ROOT, 'dist/cli/main.js');

export interface BridgeRun {
  summary: RunSummary;
  /** The run itself, from its recorded start and end. */
  runMs: number;
  /** The whole process, start-up and shut-down included. */
  processMs: number;
  maxRssMb: number;
  cpuMs: number;
}

/**
 * A folder with the configuration and the bridge's own store; `run` starts the bridge with CLI arguments,
 * `dispose` removes the folder.
 */
export function bridgeProcess(config: object): { run(args: string[]): Promise<BridgeRun>; dispose(): void } {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npm run build" (npm run bench does)`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-bridge-'));
  writeFileSync(
    path.join(dir, 'default.json'),
    JSON.stringify({ ...config, store: { path: path.join(dir, 'bridge.sqlite') } }),
  );
  writeFileSync(path.join(dir, 'bench.json'), '{}'); // NODE_ENV=bench: an empty file, so `config` does not warn
  const usageFile = path.join(dir, 'usage.json');
  return {
    async run(args) {
      const started = process.hrtime.bigint();
      const { code, stdout, stderr } = await runBridge(dir, [...args, '--json'], { BENCH_USAGE_FILE: usageFile }, true);
      const processMs = Number(process.hrtime.bigint() - started) / 1e6;
      const summary = summariesIn(stdout)[0];
      if (code !== 0 || !summary)
        throw new Error(
          `bridge ${args.join(' ')} exited with ${code}:\n${stderr.slice(-2000)}\n${stdout.slice(-2000)}`,
        );
      const usage = JSON.parse(readFileSync(usageFile, 'utf8')) as { maxRssKb: number; cpuMs: number };
      return {
        summary,
        runMs: Date.parse(summary.endedAt) - Date.parse(summary.startedAt),
        processMs,
        maxRssMb: usage.maxRssKb / 1024,
        cpuMs: usage.cpuMs,
      };
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Runs the built bridge with `args` on the configuration in `dir` (NODE_ENV bench), `env` on top; `usage`: with the
 * usage reporter preloaded (peak RSS and CPU into BENCH_USAGE_FILE).
 */
export async function runBridge(
  dir: string,
  args: string[],
  env: Record<string, string> = {},
  usage = false,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const preload = usage ? ['-r', path.join(__dirname, 'reportUsage.js')] : [];
  const child = spawn(process.execPath, [...preload, MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, NODE_CONFIG_DIR: dir, NODE_ENV: 'bench', SUPPRESS_NO_CONFIG_WARNING: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, stdout, stderr };
}

/** The run summaries a `--json` run printed. */
export function summariesIn(stdout: string): RunSummary[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{"runId"'))
    .map((l) => JSON.parse(l) as RunSummary);
}
