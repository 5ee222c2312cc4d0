/**
 * Store-mode search: the search index (candidates from SQL, matcher decides) against the old full scan
 * (parse every stored ImagingStudy of the source, then match), on a store of 20,000 studies. Reports
 * median ms per search for typical queries and full-scan ÷ indexed as a ratio. On SQLite, or on PostgreSQL
 * (`postgres`: a server to use) for the backends' comparison in bench/replicas.ts.
 * Run alone: `npx ts-node --transpile-only bench/storeSearch.ts [studies]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseApiConfig } from '../src/api/config';
import { START } from '../src/api/fhir/cursor';
import { matchContextFor, matchesAll } from '../src/api/fhir/match';
import { parseImagingStudySearch } from '../src/api/fhir/params';
import { createStudyLookup } from '../src/api/fhir/lookup';
import type { ApiSource } from '../src/api/fhir/studies';
import { sourceSchema } from '../src/config';
import type { PacsSource } from '../src/dicomweb/types';
import { silentLogger } from '../src/log';
import { openSqliteStore, type StateStore } from '../src/state';
import type { PostgresServer } from '../test/harness/postgres';
import { STORED_PATIENT_SYSTEM, storedStudy, storedStudyUid } from '../test/fixtures/storedStudies';

const QUERIES = [
  `patient:identifier=${STORED_PATIENT_SYSTEM}|P12`,
  'identifier=ACC42',
  'started=2024-02-05',
  'started=2024-02-05&modality=CT',
  `_id=${storedStudyUid('a', 4242)}`,
];

export interface StoreSearchResult {
  studies: number;
  queries: { query: string; matches: number; indexedMs: number; fullScanMs: number; ratio: number }[];
  /** Geometric mean of full-scan ms ÷ indexed ms over the queries. */
  ratio: number;
}

async function medianMs(fn: () => unknown, runs: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

/** The store searched: SQLite in a temporary folder, or a schema of its own on a given PostgreSQL server. */
async function benchStore(dir: string, postgres?: PostgresServer): Promise<StateStore> {
  if (!postgres) return openSqliteStore(path.join(dir, 'bridge.sqlite'));
  const { openPostgresStore } = await import('../src/state/postgres');
  const schema = `bench_search_${process.pid}_${Date.now()}`;
  return openPostgresStore({
    connectionString: postgres.connectionString,
    password: postgres.password,
    poolSize: 4,
    schema,
    ssl: false,
  });
}

export async function run(opts: { studies?: number; postgres?: PostgresServer } = {}): Promise<StoreSearchResult> {
  const studies = opts.studies ?? 20_000;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-store-search-'));
  const store = await benchStore(dir, opts.postgres);
  const source: ApiSource = {
    config: sourceSchema.parse({ id: 'a', qidoBase: 'http://pacs.invalid/dicom-web', defaultTimezone: 'Asia/Taipei' }),
    pacs: {} as PacsSource, // store mode without fallback never asks the PACS
  };
  const service = createStudyLookup({
    config: parseApiConfig({ mode: 'store', storeFallback: false, cache: { enabled: false }, auth: { type: 'none' } }),
    sources: [source],
    store: store.resources,
    logger: silentLogger,
  });
  try {
    // In pages, as the sync writes them (one transaction each).
    for (let from = 0; from < studies; from += 1000)
      await store.resources.put(
        Array.from({ length: Math.min(1000, studies - from) }, (_, k) => ({
          resource: storedStudy('a', from + k),
          sourceId: 'a',
          studyUid: storedStudyUid('a', from + k),
          contentHash: `h${from + k}`,
        })),
      );
    const opts = { defaultCount: 20, maxCount: 100, maxValueLength: 128, strict: false };
    const results: StoreSearchResult['queries'] = [];
    for (const query of QUERIES) {
      const { criteria } = parseImagingStudySearch([...new URLSearchParams(query).entries()], opts);
      const ctx = matchContextFor(source.config);
      // A first page plus its total (_summary=count), as a client listing results does.
      let matches = 0;
      const indexed = async () => {
        await service.search({ criteria, count: 20, cursor: START });
        matches = await service.count(criteria);
      };
      await indexed();
      const indexedMs = await medianMs(indexed, 15);
      const fullScan = async () =>
        (await store.resources.listImagingStudies({ sourceId: 'a' })).filter((r) => matchesAll(r, criteria, ctx));
      const scanned = (await fullScan()).length;
      if (scanned !== matches) throw new Error(`${query}: index found ${matches}, full scan ${scanned}`);
      const fullScanMs = await medianMs(fullScan, 3);
      results.push({
        query,
        matches,
        indexedMs: +indexedMs.toFixed(2),
        fullScanMs: +fullScanMs.toFixed(1),
        ratio: +(fullScanMs / indexedMs).toFixed(1),
      });
    }
    const ratio = Math.exp(results.reduce((a, r) => a + Math.log(r.fullScanMs / r.indexedMs), 0) / results.length);
    return { studies, queries: results, ratio: +ratio.toFixed(1) };
  } finally {
    service.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  run({ studies: process.argv[2] ? Number(process.argv[2]) : undefined })
    .then((r) => console.log(JSON.stringify(r, null, 2)))
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
