/**
 * `npm run bench`: builds or reuses the benchmark corpora (each in its own Orthanc), measures the bridge against
 * the PACS's own floor (sync, mapping, lookups, FHIR requests, store search), and writes docs/benchmarks.md (the
 * block between its markers) and docs/benchmarks.json.
 * `npm run bench -- <suite>` runs one suite on the full corpus and prints its JSON instead:
 * fullSync, mapper, lookupApi, fhirRequests, storeSearch, enrichment and sweep (these two not part of the full run);
 * `freshness` (change feed, its own Orthanc) runs only so. Speed is measured here, never asserted in tests.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openCorpus, type BenchCorpus } from './corpus';
import { runFhirRequests } from './fhirRequests';
import { runFreshnessSuite } from './freshness';
import { runEnrichment } from './enrichment';
import { runFullSync } from './fullSync';
import { runLookupApi } from './lookupApi';
import { runMapper } from './mapper';
import { machineDescription, renderResults, spliceResults, type BenchResults } from './report';
import { runReplicas } from './replicas';
import { run as runStoreSearch } from './storeSearch';
import { runSweepCost } from './sweep';

const FULL = 2000;
const HALF = FULL / 2;
const DOCS = path.join(__dirname, '..', 'docs');

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

const suites: Record<string, (c: BenchCorpus) => Promise<unknown>> = {
  fullSync: (c) => runFullSync(c, log),
  mapper: (c) => runMapper(c),
  lookupApi: (c) => runLookupApi(c),
  fhirRequests: (c) => runFhirRequests(c),
  storeSearch: () => runStoreSearch(),
  enrichment: (c) => runEnrichment(c, log),
  replicas: (c) => runReplicas(c, log),
  // The dense corpus given, then the sparse one (2,000 studies over 365 days) in its own Orthanc.
  sweep: async (c) => ({
    dense: await runSweepCost(c, log),
    sparse: await withSparse((s) => runSweepCost(s, log)),
  }),
};

const SPARSE_DAYS = 365;

async function withSparse<T>(fn: (c: BenchCorpus) => Promise<T>): Promise<T> {
  const corpus = await openCorpus(FULL, log, SPARSE_DAYS);
  try {
    return await fn(corpus);
  } finally {
    await corpus.close();
  }
}

/** Suites that bring their own PACS (no corpus is opened for them). */
const standalone: Record<string, () => Promise<unknown>> = {
  freshness: () => runFreshnessSuite(log),
};

async function withCorpus<T>(studies: number, fn: (c: BenchCorpus) => Promise<T>): Promise<T> {
  const corpus = await openCorpus(studies, log);
  try {
    return await fn(corpus);
  } finally {
    await corpus.close();
  }
}

async function versions(c: BenchCorpus): Promise<{ version: string; dicomweb: string }> {
  const system = (await c.orthanc.rest.get<{ Version: string }>('/system')).data;
  const plugin = (await c.orthanc.rest.get<{ Version: string }>('/plugins/dicom-web')).data;
  return { version: system.Version, dicomweb: plugin.Version };
}

async function all(): Promise<BenchResults> {
  log(`half corpus (${HALF} studies): full sync`);
  const half = await withCorpus(HALF, (c) => runFullSync(c, log));
  return withCorpus(FULL, async (c) => {
    log(`full corpus (${FULL} studies): full sync`);
    const full = await runFullSync(c, log);
    log('mapper');
    const mapper = await runMapper(c);
    log('lookup API');
    const lookup = await runLookupApi(c);
    log('FHIR server requests');
    const fhir = await runFhirRequests(c);
    log('store-mode search');
    const storeSearch = await runStoreSearch();
    log('replicas on PostgreSQL');
    const replicas = await runReplicas(c, log);
    return {
      date: new Date().toISOString().slice(0, 10),
      machine: machineDescription(await versions(c)),
      half,
      full,
      mapper,
      lookup,
      fhir,
      storeSearch,
      replicas,
    };
  });
}

async function main(): Promise<void> {
  const only = process.argv[2];
  if (only && standalone[only]) {
    process.stdout.write(`${JSON.stringify(await standalone[only](), null, 2)}\n`);
    return;
  }
  if (only) {
    const suite = suites[only];
    if (!suite)
      throw new Error(
        `unknown suite "${only}"; one of: ${[...Object.keys(suites), ...Object.keys(standalone)].join(', ')}`,
      );
    process.stdout.write(`${JSON.stringify(await withCorpus(FULL, suite), null, 2)}\n`);
    return;
  }
  const results = await all();
  writeFileSync(path.join(DOCS, 'benchmarks.json'), `${JSON.stringify(results, null, 2)}\n`);
  const file = path.join(DOCS, 'benchmarks.md');
  writeFileSync(file, spliceResults(readFileSync(file, 'utf8'), renderResults(results)));
  process.stdout.write(`${renderResults(results)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
