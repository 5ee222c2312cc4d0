/**
 * Batched detail queries (UID-list matching, `/series?StudyInstanceUID=a,b,c`) against one query per
 * study, on a real Orthanc: time for the series and instances of every study, and requests made.
 * Run alone: `npx ts-node --transpile-only bench/detailBatching.ts [studies] [batchSize]`.
 */
import { sourceSchema } from '../src/config';
import { createPacsSource, type PacsSource } from '../src/dicomweb';
import { corpusCounts, generateCorpus, loadStudies } from '../test/fixtures/synthetic';
import { startOrthanc } from '../test/harness/orthanc';

export interface DetailBatchingResult {
  corpus: { studies: number; series: number; instances: number };
  batchSize: number;
  batched: { ms: number; requests: number };
  perStudy: { ms: number; requests: number };
  /** per-study time ÷ batched time: how many times faster batching is. */
  speedup: number;
  /** The same for series only (no instance-level queries, which make Orthanc read every file for ImageType etc.). */
  seriesOnly: { batchedMs: number; perStudyMs: number; speedup: number };
}

async function measure(source: PacsSource, uids: string[], instances = true): Promise<{ ms: number; requests: number }> {
  const started = process.hrtime.bigint();
  const details = await source.studyDetails(uids, { instances });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (details.size !== uids.length) throw new Error('details missing');
  const r = source.stats.requests;
  return { ms: Math.round(ms), requests: r.series + r.instances };
}

export async function run(opts: { studies?: number; batchSize?: number } = {}): Promise<DetailBatchingResult> {
  const studies = opts.studies ?? 400;
  const batchSize = opts.batchSize ?? 50;
  const orthanc = await startOrthanc();
  try {
    const corpus = generateCorpus({ seed: 42, studies, days: { from: '20230101', count: 30 }, undated: 0 });
    await loadStudies(orthanc, corpus, 8);
    const uids = corpus.map((s) => s.studyUid);
    const source = (uidListMatching: 'on' | 'off') =>
      createPacsSource(sourceSchema.parse({ id: 'bench', qidoBase: orthanc.dicomWebBase, uidListMatching, detailBatchSize: batchSize, pageSize: 1000 }));
    await source('on').studyDetails(uids.slice(0, 20)); // warm Orthanc's caches for both runs alike
    const perStudy = await measure(source('off'), uids);
    const batched = await measure(source('on'), uids);
    const seriesPerStudy = await measure(source('off'), uids, false);
    const seriesBatched = await measure(source('on'), uids, false);
    const ratio = (a: number, b: number) => Math.round((a / b) * 10) / 10;
    return {
      corpus: corpusCounts(corpus),
      batchSize,
      batched,
      perStudy,
      speedup: ratio(perStudy.ms, batched.ms),
      seriesOnly: { batchedMs: seriesBatched.ms, perStudyMs: seriesPerStudy.ms, speedup: ratio(seriesPerStudy.ms, seriesBatched.ms) },
    };
  } finally {
    await orthanc.stop();
  }
}

if (require.main === module) {
  const [studies, batchSize] = process.argv.slice(2).map(Number);
  run({ studies: studies || undefined, batchSize: batchSize || undefined }).then((r) => console.log(JSON.stringify(r, null, 2)));
}
