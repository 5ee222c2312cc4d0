/**
 * Backfill throughput on a real Orthanc: studies/s into the embedded store with batched detail queries
 * (UID-list matching) against study-by-study details, the requests each made, and the cost of an
 * unchanged re-poll. Run alone: `npx ts-node --transpile-only bench/syncBackfill.ts [studies]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sourceSchema } from '../src/config';
import { createEmbeddedSink } from '../src/sinks/embeddedSink';
import { openStore } from '../src/sinks/store';
import { createSyncService } from '../src/sync';
import { corpusCounts, generateCorpus, loadStudies } from '../test/fixtures/synthetic';
import { startOrthanc, type OrthancServer } from '../test/harness/orthanc';
import { startRecordingProxy, type DicomWebLevel } from '../test/harness/recordingProxy';

export interface BackfillMeasure {
  seconds: number;
  studiesPerSecond: number;
  requests: Record<DicomWebLevel, number>;
  detailRequestsPerStudy: number;
}

export interface SyncBackfillResult {
  corpus: { studies: number; series: number; instances: number };
  batched: BackfillMeasure;
  perStudy: BackfillMeasure;
  /** batched studies/s ÷ per-study studies/s. */
  speedup: number;
  repoll: { seconds: number; requests: Record<DicomWebLevel, number>; written: number };
}

const FROM = '20220101';
const DAYS = 30;
const TO = '20220130';

export async function run(opts: { studies?: number; orthanc?: OrthancServer } = {}): Promise<SyncBackfillResult> {
  const studies = opts.studies ?? 400;
  const orthanc = opts.orthanc ?? (await startOrthanc());
  const proxy = await startRecordingProxy(orthanc.dicomWebBase);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-sync-'));
  try {
    const corpus = generateCorpus({ seed: 42, studies, days: { from: FROM, count: DAYS }, undated: 0 });
    await loadStudies(orthanc, corpus, 8);

    const measure = async (mode: 'on' | 'off', repoll: boolean) => {
      const store = openStore(path.join(dir, `bridge-${mode}.sqlite`));
      const source = sourceSchema.parse({ id: 'bench', qidoBase: proxy.via(orthanc.dicomWebBase), uidListMatching: mode, retries: 0 });
      const service = createSyncService({ config: { sources: [source], sync: { windowDays: 7, batchSize: 100 } }, store, sinks: [createEmbeddedSink(store)] });
      try {
        proxy.reset();
        const started = process.hrtime.bigint();
        const summary = await service.backfill('bench', FROM, TO);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        if (summary.status !== 'ok' || summary.counts.written !== studies) throw new Error(`backfill (${mode}) did not complete: ${JSON.stringify(summary)}`);
        const requests = proxy.counts();
        const backfill: BackfillMeasure = { seconds, studiesPerSecond: studies / seconds, requests, detailRequestsPerStudy: (requests.series + requests.instances) / studies };
        if (!repoll) return { backfill };
        // The same range again: nothing changed, so only study-level queries and no writes.
        proxy.reset();
        const again = process.hrtime.bigint();
        const second = await service.backfill('bench', FROM, '20220131');
        return { backfill, repoll: { seconds: Number(process.hrtime.bigint() - again) / 1e9, requests: proxy.counts(), written: second.counts.written ?? 0 } };
      } finally {
        await service.stop();
        store.close();
      }
    };

    const perStudy = await measure('off', false);
    const batched = await measure('on', true);
    return {
      corpus: corpusCounts(corpus),
      batched: batched.backfill,
      perStudy: perStudy.backfill,
      speedup: batched.backfill.studiesPerSecond / perStudy.backfill.studiesPerSecond,
      repoll: batched.repoll!,
    };
  } finally {
    await proxy.stop();
    if (!opts.orthanc) await orthanc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  run({ studies: process.argv[2] ? Number(process.argv[2]) : undefined })
    .then((r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`))
    .catch((err) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    });
}
