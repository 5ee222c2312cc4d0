// The test tree mirrors src/ (run by `npm run lint`): every suite under test/unit and test/integration sits in a
// folder that src/ has (or in one of the cross-cutting folders below), and a suite named after a source file sits in
// that file's folder. A newcomer then finds a file's tests where the file is.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

/** Suites about behaviour across folders, each kept where its name says what it checks. */
const CROSS_CUTTING = new Map([
  ['integration', 'the fixtures themselves (integration/fixtures.test.ts)'],
  ['integration/identity', 'patient identity end to end: mapping, store, API and FHIR server together'],
  ['integration/replicas', 'several serve processes sharing one PostgreSQL'],
]);

function walk(dir, keep) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...walk(full, keep));
    else if (keep(name)) out.push(full);
  }
  return out;
}

const rel = (p) => path.relative(root, p).split(path.sep).join('/');
const srcFiles = walk(path.join(root, 'src'), (n) => n.endsWith('.ts') && n !== 'index.ts').map(rel);
const srcFolders = new Set(srcFiles.map((f) => path.posix.dirname(f).replace(/^src\/?/, '')));
/** Source file base name → the folders (under src/) that have a file of that name. */
const homes = new Map();
for (const f of srcFiles) {
  const base = path.posix.basename(f, '.ts');
  homes.set(base, [...(homes.get(base) ?? []), path.posix.dirname(f).replace(/^src\/?/, '')]);
}

const problems = [];
for (const kind of ['unit', 'integration']) {
  for (const file of walk(path.join(root, 'test', kind), (n) => n.endsWith('.test.ts')).map(rel)) {
    const folder = path.posix.dirname(file).replace(/^test\//, '');
    const mirrored = folder.replace(new RegExp(`^${kind}/?`), '');
    const name = path.posix.basename(file, '.test.ts');
    if (!srcFolders.has(mirrored) && !CROSS_CUTTING.has(folder))
      problems.push(`${file}: src/${mirrored} does not exist; put it in the folder of the code it tests`);
    const own = homes.get(name);
    if (own && !own.includes(mirrored))
      problems.push(
        `${file}: named after ${own.map((f) => `src/${f}/${name}.ts`).join(' or ')}; move it to that folder`,
      );
  }
}

if (problems.length) {
  console.error(`The test tree does not mirror src/:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
