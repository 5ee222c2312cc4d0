/**
 * `npm run bench`: runs the exported `run()` of every other bench/*.ts file, one after another,
 * and prints each result as JSON. Speed is measured here, never asserted in tests.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';

async function main(): Promise<void> {
  const only = process.argv[2];
  const files = readdirSync(__dirname)
    .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.endsWith('.d.ts'))
    .filter((f) => !only || f.startsWith(only))
    .sort();
  for (const file of files) {
    const mod = (await import(path.join(__dirname, file))) as { run?: () => Promise<unknown> };
    if (typeof mod.run !== 'function') continue;
    const started = Date.now();
    const result = await mod.run();
    console.log(`## ${file} (${((Date.now() - started) / 1000).toFixed(1)} s)\n${JSON.stringify(result, null, 2)}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
