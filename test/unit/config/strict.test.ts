/**
 * Configuration is strict at every depth: a misspelt key anywhere is a configuration error naming
 * its full path, every problem is listed in one message, and URLs must be http(s) URLs with a host.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError, configSchema, parseConfig } from '../../../src/config';
import { isHttpUrl, redactUrl } from '../../../src/http/url';

const REPO = path.resolve(__dirname, '../../..');

/** A valid configuration touching every section, so a typo can be put anywhere. */
function fullConfig(): Record<string, any> {
  return {
    sources: [
      {
        id: 'pacs',
        qidoBase: 'https://pacs.example/dicom-web',
        publicWadoBase: 'https://gateway.example/dicom-web',
        auth: { type: 'basic', username: 'bridge', password: 'pw' },
        tls: { rejectUnauthorized: true },
        defaultTimezone: 'Asia/Taipei',
        mapping: { accessionSystem: 'urn:oid:1.2.3', patient: { mode: 'identifier' } },
      },
    ],
    store: { path: '/tmp/bridge.sqlite' },
    sync: { lookbackDays: 3, reconcile: { deletion: 'ignore' }, sources: { pacs: { batchSize: 10 } } },
    sinks: {
      embedded: { enabled: true },
      fhir: {
        baseUrl: 'https://fhir.example/fhir',
        auth: { type: 'oauth2', tokenUrl: 'https://auth.example/token', clientId: 'c', clientSecret: 's' },
        patientLinking: { mode: 'lookup' },
        ownerTag: { system: 'urn:x', code: 'y' },
      },
      validation: { enabled: false },
    },
    api: {
      port: 8080,
      auth: { type: 'apiKey', keys: [{ client: 'ehr', sha256: 'ab'.repeat(32) }] },
      cache: { enabled: true },
      rateLimit: { max: 10 },
      cors: { enabled: false },
      audit: { enabled: true },
      patientIdRule: { prefix: '' },
    },
    logging: { level: 'info' },
  };
}

/** Sets obj[path] = value, where path is "a.0.b". */
function put(obj: Record<string, any>, at: string, value: unknown): Record<string, any> {
  const keys = at.split('.');
  let node = obj;
  for (const k of keys.slice(0, -1)) node = node[k];
  node[keys[keys.length - 1]] = value;
  return obj;
}

function problemsOf(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

test('the full configuration used below is valid', async () => {
  expect(problemsOf(fullConfig())).toEqual([]);
});

// One misspelt key per object of every section (the key path names where it is put).
const typos = [
  'sources.0.publicWadoBse',
  'sources.0.defaultTimeZone',
  'sources.0.auth.pasword',
  'sources.0.tls.cafile',
  'sources.0.mapping.acessionSystem',
  'sources.0.mapping.patient.defaultSytem',
  'store.pth',
  'sync.lookbakDays',
  'sync.reconcile.deleton',
  'sync.sources.pacs.batchsize',
  'sinks.embeded',
  'sinks.embedded.enable',
  'sinks.fhir.baseURL',
  'sinks.fhir.auth.clientSecrt',
  'sinks.fhir.patientLinking.mdoe',
  'sinks.fhir.ownerTag.sytem',
  'sinks.validation.profileDir',
  'api.prot',
  'api.auth.keys.0.scope',
  'api.cache.ttl',
  'api.rateLimit.maximum',
  'api.cors.origin',
  'api.audit.destinaton',
  'api.patientIdRule.prefx',
  'logging.levl',
  'sink',
];

test.each(typos)('a misspelt key is an error naming its path: %s', (at) => {
  expect(problemsOf(put(fullConfig(), at, 'x'))).toEqual([`${at}: unknown key`]);
});

test('every misspelt key and bad URL is listed in one message', async () => {
  const raw = fullConfig();
  for (const at of typos) put(raw, at, 'x');
  put(raw, 'sources.0.qidoBase', 'htp:/x');
  let err: unknown;
  try {
    parseConfig(raw);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  const { problems, message } = err as ConfigError;
  expect(problems).toHaveLength(typos.length + 1);
  expect(message).toMatch(new RegExp(`^Invalid configuration \\(${typos.length + 1} problems\\):`));
  for (const at of typos) expect(message).toContain(`  - ${at}: unknown key`);
  expect(message).toContain('  - sources.0.qidoBase: "htp:/x" is not an http(s) URL with a host');
});

test('a key valid for another auth type is unknown for this one', async () => {
  const raw = put(fullConfig(), 'sources.0.auth', { type: 'bearer', token: 't', username: 'u' });
  expect(problemsOf(raw)).toEqual(['sources.0.auth.username: unknown key']);
});

/** Every object schema reached from the top, by path; unions, arrays, records and defaults are looked through. */
function objectSchemas(schema: z.ZodTypeAny, at = '(root)'): Array<{ at: string; strict: boolean }> {
  const def = schema._def as { typeName: string } & Record<string, any>;
  switch (def.typeName) {
    case 'ZodDefault':
    case 'ZodOptional':
    case 'ZodNullable':
      return objectSchemas(def.innerType, at);
    case 'ZodEffects':
      return objectSchemas(def.schema, at);
    case 'ZodArray':
      return objectSchemas(def.type, `${at}[]`);
    case 'ZodRecord':
      return objectSchemas(def.valueType, `${at}.<key>`);
    case 'ZodUnion':
    case 'ZodDiscriminatedUnion':
      return (def.options as z.ZodTypeAny[]).flatMap((o) => objectSchemas(o, at));
    case 'ZodObject':
      return [
        { at, strict: def.unknownKeys === 'strict' },
        ...Object.entries((schema as z.AnyZodObject).shape).flatMap(([k, v]) =>
          objectSchemas(v as z.ZodTypeAny, `${at}.${k}`),
        ),
      ];
    default:
      return [];
  }
}

test('every object in the configuration schema is strict, including ones added later', async () => {
  const objects = objectSchemas(configSchema);
  expect(objects.length).toBeGreaterThan(20);
  expect(objects.filter((o) => !o.strict).map((o) => o.at)).toEqual([]);
});

describe('URLs', () => {
  const urlKeys = [
    'sources.0.qidoBase',
    'sources.0.publicWadoBase',
    'sinks.fhir.baseUrl',
    'sinks.fhir.auth.tokenUrl',
    'api.baseUrl',
  ];
  test.each(urlKeys)('%s must be an http(s) URL with a host', (at) => {
    for (const bad of ['htp:/x', 'http:/x', 'pacs.example/dicom-web', 'ftp://pacs.example/', 'http://', 'not a url'])
      expect(problemsOf(put(fullConfig(), at, bad))).toEqual([expect.stringMatching(new RegExp(`^${at}: .*http`))]);
    for (const good of ['http://127.0.0.1:8042/dicom-web', 'https://pacs.example/dicom-web', 'HTTPS://[::1]:8443/x'])
      expect(problemsOf(put(fullConfig(), at, good))).toEqual([]);
  });

  test('api.auth.jwksUrl too', async () => {
    const raw = put(fullConfig(), 'api.auth', { type: 'jwt', jwksUrl: 'htp:/x', issuer: 'i', audience: 'a' });
    expect(problemsOf(raw)).toEqual([expect.stringMatching(/^api\.auth\.jwksUrl: /)]);
  });

  test('a bad URL is quoted without its credentials', async () => {
    const [problem] = problemsOf(put(fullConfig(), 'sources.0.qidoBase', 'htp://bridge:s3cret@pacs/x?token=t0k'));
    expect(problem).not.toMatch(/s3cret|t0k/);
  });

  test('isHttpUrl and redactUrl', async () => {
    expect(isHttpUrl('http://pacs:8042/dicom-web')).toBe(true);
    expect(isHttpUrl('http:/pacs')).toBe(false);
    expect(redactUrl('https://user:pw@pacs.example:8443/dicom-web/studies?PatientID=123&token=x#f')).toBe(
      'https://pacs.example:8443/dicom-web/studies',
    );
    expect(redactUrl('user:pw@pacs/x?y')).toBe('pacs/x');
  });
});

test('the shipped default.json is valid on its own', async () => {
  const raw = JSON.parse(readFileSync(path.join(REPO, 'config/default.json'), 'utf8'));
  expect(problemsOf(raw)).toEqual([]);
});
