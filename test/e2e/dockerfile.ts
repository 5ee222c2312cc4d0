/**
 * Reads a Dockerfile and performs its stages outside Docker (no engine on these machines): each stage
 * gets its own folder standing for its filesystem, COPY honours .dockerignore, RUN runs in bash with the
 * stage's absolute paths mapped into that folder. Enough of the format for this project's Dockerfile;
 * anything it does not know is an error, so a changed recipe cannot silently go untested.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export interface Instruction {
  op: string;
  args: string;
  line: number;
}

export interface Stage {
  name: string;
  image: string;
  /** The folder standing for this stage's filesystem root. */
  root: string;
  workdir: string;
  env: Record<string, string>;
  user?: string;
  volumes: string[];
  expose: number[];
  healthcheck?: { options: Record<string, string>; command: string[] };
  entrypoint?: string[];
  cmd?: string[];
}

export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i];
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) line = line.replace(/\\\s*$/, ' ') + lines[++i].trim();
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile line ${start + 1}: cannot read "${line}"`);
    out.push({ op: m[1].toUpperCase(), args: m[2].trim(), line: start + 1 });
  }
  return out;
}

/** Docker's .dockerignore: patterns relative to the context root, `*` within one path segment. */
export function dockerignoreMatcher(text: string): (relPath: string) => boolean {
  const patterns = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map(
      (p) =>
        new RegExp(
          `^${p
            .replace(/^\/+|\/+$/g, '')
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '[^/]*')
            .replace(/\?/g, '[^/]')}(/.*)?$`,
        ),
    );
  return (rel) => patterns.some((re) => re.test(rel));
}

const execForm = (args: string): string[] => {
  const parsed = JSON.parse(args) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string'))
    throw new Error(`expected exec form (JSON array): ${args}`);
  return parsed;
};

export interface RunOptions {
  /** The build context (the repository). */
  context: string;
  /** Where the stages' folders go. */
  workspace: string;
  /** Extra environment for RUN steps (e.g. where npm finds a local prebuilt native module). */
  runEnv?: Record<string, string>;
  /** Rewrites a RUN command before it runs (e.g. user names the machine lacks); returns it unchanged by default. */
  rewriteRun?: (command: string) => string;
  log?: (message: string) => void;
}

/** Performs every stage in order; returns them by name (the last one is the image). */
export function performDockerfile(file: string, o: RunOptions): Stage[] {
  const ignored = existsSync(path.join(o.context, '.dockerignore'))
    ? dockerignoreMatcher(readFileSync(path.join(o.context, '.dockerignore'), 'utf8'))
    : () => false;
  const stages: Stage[] = [];
  let stage: Stage | undefined;
  const inStage = (p: string, s: Stage) => path.join(s.root, path.posix.resolve(s.workdir, p));
  // Absolute container paths under the WORKDIR's top folder (e.g. /app/data) in a RUN command,
  // mapped into the stage folder.
  const mapPaths = (command: string, s: Stage) => {
    const top = s.workdir.split('/')[1];
    if (!top) return command;
    const re = new RegExp(`(^|[\\s=:'"])(/${top}(?:/[^\\s'";&|]*)?)(?=$|[\\s'";&|])`, 'g');
    return command.replace(re, (_m, pre: string, p: string) => `${pre}${path.join(s.root, p)}`);
  };

  for (const ins of parseDockerfile(readFileSync(file, 'utf8'))) {
    const where = `Dockerfile line ${ins.line} (${ins.op})`;
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`${where}: cannot read "${ins.args}"`);
      const name = m[2] ?? `stage${stages.length}`;
      const root = path.join(o.workspace, name);
      mkdirSync(root, { recursive: true });
      stage = { name, image: m[1], root, workdir: '/', env: {}, volumes: [], expose: [] };
      stages.push(stage);
      continue;
    }
    if (!stage) throw new Error(`${where}: before any FROM`);
    const s = stage;
    switch (ins.op) {
      case 'WORKDIR':
        s.workdir = path.posix.resolve(s.workdir, ins.args);
        mkdirSync(path.join(s.root, s.workdir), { recursive: true });
        break;
      case 'ENV':
        for (const m of ins.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g))
          s.env[m[1]] = m[2].replace(/^"|"$/g, '');
        break;
      case 'COPY': {
        const parts = ins.args.split(/\s+/);
        const from = parts[0].startsWith('--from=') ? parts.shift()!.slice('--from='.length) : undefined;
        if (parts.some((p) => p.startsWith('--'))) throw new Error(`${where}: unsupported option in "${ins.args}"`);
        const dest = parts.pop()!;
        for (const src of parts) {
          const source = from
            ? path.join(stages.find((x) => x.name === from)?.root ?? fail(`${where}: no stage "${from}"`), src)
            : path.join(o.context, src);
          if (!existsSync(source)) throw new Error(`${where}: ${src} does not exist`);
          const target =
            parts.length > 1 || dest.endsWith('/') ? path.join(inStage(dest, s), path.basename(src)) : inStage(dest, s);
          const filter = from
            ? () => true
            : (p: string) => !ignored(path.relative(o.context, p).split(path.sep).join('/')) || p === o.context;
          if (!from && ignored(src.replace(/^\.\//, '')))
            throw new Error(`${where}: ${src} is excluded by .dockerignore`);
          mkdirSync(path.dirname(target), { recursive: true });
          cpSync(source, target, { recursive: statSync(source).isDirectory(), filter, verbatimSymlinks: true });
        }
        break;
      }
      case 'RUN': {
        if (ins.args.startsWith('[')) throw new Error(`${where}: exec-form RUN is not supported`);
        const command = mapPaths((o.rewriteRun ?? ((c) => c))(ins.args), s);
        o.log?.(`RUN ${ins.args}`);
        execFileSync('bash', ['-euo', 'pipefail', '-c', command], {
          cwd: path.join(s.root, s.workdir),
          env: { ...process.env, ...s.env, ...o.runEnv },
          stdio: ['ignore', 'pipe', 'pipe'],
          maxBuffer: 64 * 1024 * 1024,
        });
        break;
      }
      case 'USER':
        s.user = ins.args;
        break;
      case 'VOLUME':
        s.volumes.push(...(ins.args.startsWith('[') ? execForm(ins.args) : ins.args.split(/\s+/)));
        break;
      case 'EXPOSE':
        s.expose.push(...ins.args.split(/\s+/).map((p) => Number(p.split('/')[0])));
        break;
      case 'HEALTHCHECK': {
        const m = /^((?:--[a-z-]+=\S+\s+)*)CMD\s+(\[.*\])$/.exec(ins.args);
        if (!m) throw new Error(`${where}: expected HEALTHCHECK [options] CMD [exec form]`);
        const options = Object.fromEntries([...m[1].matchAll(/--([a-z-]+)=(\S+)/g)].map((x) => [x[1], x[2]]));
        s.healthcheck = { options, command: execForm(m[2]) };
        break;
      }
      case 'ENTRYPOINT':
        s.entrypoint = execForm(ins.args);
        break;
      case 'CMD':
        s.cmd = execForm(ins.args);
        break;
      default:
        throw new Error(`${where}: instruction not supported by this test`);
    }
  }
  return stages;
}

function fail(message: string): never {
  throw new Error(message);
}
