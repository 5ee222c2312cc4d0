/**
 * The shipped configuration files through the real `config` package: the production example is valid
 * once its secrets come from the environment, a missing secret is named at start-up, and
 * docs/configuration.md covers every key of the schema and every environment variable.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { BridgeConfig } from '../../../src/config';
import { configSchema } from '../../../src/config';

const REPO = path.resolve(__dirname, '../../..');
const docs = readFileSync(path.join(REPO, 'docs/configuration.md'), 'utf8');
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'h7-config-'));
  copyFileSync(path.join(REPO, 'config/default.json'), path.join(dir, 'default.json'));
  copyFileSync(path.join(REPO, 'config/production.example.json'), path.join(dir, 'production.json'));
  copyFileSync(
    path.join(REPO, 'config/custom-environment-variables.json'),
    path.join(dir, 'custom-environment-variables.json'),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Loads configuration as `serve` does, with this environment, in a fresh module registry. */
function loadWith(env: Record<string, string>): BridgeConfig {
  const saved = { ...process.env };
  Object.assign(process.env, { NODE_CONFIG_DIR: dir, NODE_ENV: 'production', SUPPRESS_NO_CONFIG_WARNING: '1' }, env);
  delete process.env.NODE_CONFIG;
  try {
    let loaded: BridgeConfig | undefined;
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh copy needs require()
      loaded = (require('../../../src/config') as typeof import('../../../src/config')).loadConfig();
    });
    return loaded!;
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

const secrets = {
  FHIR_CLIENT_SECRET: 'the-fhir-client-secret',
  API_KEYS: JSON.stringify([
    { client: 'ehr', sha256: 'ab'.repeat(32) },
    { client: 'ops', sha256: 'cd'.repeat(32), scopes: ['bridge/admin'] },
  ]),
};

test('the production example is valid with its secrets from the environment', async () => {
  const cfg = loadWith(secrets);
  expect(cfg.sources.map((s) => s.id)).toEqual(['main-pacs']);
  expect(cfg.sinks.fhir?.auth).toMatchObject({ type: 'oauth2', clientSecret: 'the-fhir-client-secret' });
  expect(cfg.api.auth).toMatchObject({
    type: 'apiKey',
    keys: [{ client: 'ehr' }, { client: 'ops', scopes: ['bridge/admin'] }],
  });
  expect(cfg.store.path).toBe('/app/data/bridge.sqlite');
});

test('a secret missing from the environment is named at start-up', async () => {
  expect(() => loadWith({ API_KEYS: secrets.API_KEYS })).toThrow(/sinks\.fhir\.auth\.clientSecret/);
});

test('environment variables override the files: sources whole, ports as numbers', async () => {
  const cfg = loadWith({
    ...secrets,
    BRIDGE_SOURCES: JSON.stringify([
      {
        id: 'other',
        qidoBase: 'https://other.example/dicom-web',
        auth: { type: 'basic', username: 'u', password: 'p' },
      },
    ]),
    API_PORT: '9090',
    LOG_LEVEL: 'debug',
  });
  expect(cfg.sources).toHaveLength(1);
  expect(cfg.sources[0]).toMatchObject({ id: 'other', auth: { type: 'basic', password: 'p' } });
  expect(cfg.api.port).toBe(9090);
  expect(cfg.logging.level).toBe('debug');
});

/** Every leaf key path of a zod schema ("sources[].auth.password", "sync.sources.<id>"). */
function keyPaths(schema: z.ZodTypeAny, prefix = ''): string[] {
  const def = schema._def as { typeName: string } & Record<string, unknown>;
  switch (def.typeName) {
    case 'ZodDefault':
    case 'ZodOptional':
    case 'ZodNullable':
      return keyPaths(def.innerType as z.ZodTypeAny, prefix);
    case 'ZodEffects':
      return keyPaths(def.schema as z.ZodTypeAny, prefix);
    case 'ZodArray':
      return keyPaths(def.type as z.ZodTypeAny, `${prefix}[]`);
    case 'ZodRecord':
      return [`${prefix}.<key>`];
    case 'ZodObject':
      return Object.entries((schema as z.AnyZodObject).shape).flatMap(([k, v]) =>
        keyPaths(v as z.ZodTypeAny, prefix ? `${prefix}.${k}` : k),
      );
    case 'ZodDiscriminatedUnion':
    case 'ZodUnion':
      return [...new Set((def.options as z.ZodTypeAny[]).flatMap((o) => keyPaths(o, prefix)))];
    default:
      return [prefix];
  }
}

test('docs/configuration.md names every key of the schema and every environment variable', async () => {
  const paths = keyPaths(configSchema);
  expect(paths.length).toBeGreaterThan(100);
  const prose = docs.replace(/^```[\s\S]*?^```/gm, '');
  const inBackticks = new Set(
    [...prose.matchAll(/`([^`]+)`/g)].flatMap((m) => m[1].split(/[^A-Za-z0-9_]+/)).filter(Boolean),
  );
  const undocumented = paths.filter(
    (p) =>
      !/<key>$/.test(p) &&
      !inBackticks.has(
        p
          .split(/[.[\]]+/)
          .filter(Boolean)
          .pop()!,
      ),
  );
  expect(undocumented).toEqual([]);
  // Each section has its own heading or table.
  for (const section of Object.keys(configSchema.shape)) expect(docs).toContain(`\`${section}`);

  const envVars: string[] = [];
  const walk = (node: unknown) => {
    if (typeof node === 'string') envVars.push(node);
    else if (node && typeof node === 'object') {
      const o = node as Record<string, unknown>;
      if (typeof o.__name === 'string') envVars.push(o.__name);
      else Object.values(o).forEach(walk);
    }
  };
  walk(JSON.parse(readFileSync(path.join(REPO, 'config/custom-environment-variables.json'), 'utf8')));
  expect(envVars.length).toBeGreaterThan(15);
  for (const v of envVars) expect(docs).toContain(`\`${v}\``);
});
