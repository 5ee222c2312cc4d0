/**
 * Loads configuration through the `config` package (top-level config/ folder, NODE_ENV overlays,
 * custom-environment-variables.json for secrets) and validates it. Every problem is listed at once.
 */
import { ZodError } from 'zod';
import { configSchema, type BridgeConfig } from './schema';

export * from './schema';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}`,
    );
    this.name = 'ConfigError';
  }
}

function describeZod(err: ZodError): string[] {
  return err.issues.flatMap((i) => {
    // One line per unknown key, named by its full path, so a typo is found where it sits.
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => `${[...i.path, k].join('.')}: unknown key`);
    return [`${i.path.join('.') || '(root)'}: ${i.message}`];
  });
}

/** Validates a raw configuration object (as read from files or built by a test). */
export function parseConfig(raw: unknown): BridgeConfig {
  const result = configSchema.safeParse(raw);
  const problems = result.success ? [] : describeZod(result.error);
  if (result.success) {
    const seen = new Set<string>();
    result.data.sources.forEach((s, i) => {
      if (seen.has(s.id)) problems.push(`sources.${i}.id: duplicate source id "${s.id}"`);
      seen.add(s.id);
    });
  }
  if (problems.length) throw new ConfigError(problems);
  return (result as { data: BridgeConfig }).data;
}

/** Reads the `config` package's merged view. Required lazily so tests can set NODE_CONFIG_DIR first. */
export function loadConfig(): BridgeConfig {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy: it reads NODE_CONFIG_DIR when loaded
  const config = require('config') as { util: { toObject(o?: unknown): unknown } };
  return parseConfig(config.util.toObject());
}
