/**
 * What WADO-RS metadata enrichment (sources[].enrichment.wadoMetadata) costs a full sync: the bridge's full sync
 * with and without it, alternating in rounds with the batched QIDO floor (listing + batched details), medians
 * reported; and its extra requests per study, counted by a recording proxy in front of Orthanc in one more run
 * of each kind (not timed: the proxy adds its own latency). `npm run bench -- enrichment`.
 */
import { sourceSchema, type SourceInput } from '../src/config';
import { startRecordingProxy } from '../test/harness/recordingProxy';
import { bridgeProcess, type BridgeRun } from './bridgeProcess';
import type { BenchCorpus } from './corpus';
import { corpusFloor } from './qidoFloor';
import { median } from './stats';

const SOURCE = { id: 'bench', defaultTimezone: 'Asia/Taipei' };

export interface EnrichmentResult {
  studies: number;
  floor: { batchedMs: number };
  plain: { runMs: number; runsMs: number[]; requestsPerStudy: Record<string, number> };
  enriched: { runMs: number; runsMs: number[]; requestsPerStudy: Record<string, number> };
  /** Enriched run ÷ plain run, and each ÷ the batched floor. */
  ratios: { enrichedToPlain: number; plainToBatchedFloor: number; enrichedToBatchedFloor: number };
  /** Extra time per study, in ms (enriched − plain, ÷ studies). */
  extraMsPerStudy: number;
}

export async function runEnrichment(
  corpus: BenchCorpus,
  log: (line: string) => void = () => {},
  rounds = 3,
): Promise<EnrichmentResult> {
  const config = (qidoBase: string, over: Partial<SourceInput> = {}) => ({
    sources: [sourceSchema.parse({ ...SOURCE, qidoBase, ...over })],
    logging: { level: 'warn' },
  });
  const base = corpus.orthanc.dicomWebBase;
  const floor = corpusFloor(corpus, sourceSchema.parse({ ...SOURCE, qidoBase: base }));
  const backfill = async (cfg: object): Promise<BridgeRun> => {
    const bridge = bridgeProcess(cfg);
    try {
      const run = await bridge.run(['backfill', '--from', corpus.from, '--to', corpus.to, '--no-progress']);
      if (run.summary.status !== 'ok') throw new Error(`bridge backfill: ${JSON.stringify(run.summary)}`);
      if (run.summary.counts.written !== corpus.counts.studies)
        throw new Error(`wrote ${run.summary.counts.written} of ${corpus.counts.studies} studies`);
      return run;
    } finally {
      bridge.dispose();
    }
  };
  try {
    const warm = await floor.listStudies();
    const batched: number[] = [];
    const plain: number[] = [];
    const enriched: number[] = [];
    for (let round = 0; round < rounds; round++) {
      log(`enrichment round ${round + 1} of ${rounds}: batched floor, bridge, bridge with enrichment`);
      batched.push((await floor.listStudies()).phase.ms + (await floor.batchedDetails(warm.uids)).ms);
      plain.push((await backfill(config(base))).runMs);
      enriched.push((await backfill(config(base, { enrichment: { wadoMetadata: true } }))).runMs);
    }
    log('enrichment: counting requests through a recording proxy');
    const proxy = await startRecordingProxy(base);
    const perStudy = async (over: Partial<SourceInput>) => {
      proxy.reset();
      await backfill(config(proxy.via(base), over));
      const counts = proxy.counts();
      return Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / corpus.counts.studies]));
    };
    let plainRequests: Record<string, number>;
    let enrichedRequests: Record<string, number>;
    try {
      plainRequests = await perStudy({});
      enrichedRequests = await perStudy({ enrichment: { wadoMetadata: true } });
    } finally {
      await proxy.stop();
    }
    const batchedMs = median(batched);
    const plainMs = median(plain);
    const enrichedMs = median(enriched);
    return {
      studies: corpus.counts.studies,
      floor: { batchedMs },
      plain: { runMs: plainMs, runsMs: plain, requestsPerStudy: plainRequests },
      enriched: { runMs: enrichedMs, runsMs: enriched, requestsPerStudy: enrichedRequests },
      ratios: {
        enrichedToPlain: enrichedMs / plainMs,
        plainToBatchedFloor: plainMs / batchedMs,
        enrichedToBatchedFloor: enrichedMs / batchedMs,
      },
      extraMsPerStudy: (enrichedMs - plainMs) / corpus.counts.studies,
    };
  } finally {
    floor.close();
  }
}
