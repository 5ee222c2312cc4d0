/**
 * Full sync against the QIDO floors, on one corpus: the floors' phases, the bridge's full sync (a backfill of
 * the corpus's StudyDate range into its embedded store, run as the real executable with default settings),
 * then an unchanged re-poll. Floors and bridge alternate (floor, bridge, floor, bridge) and are averaged,
 * so a drift in Orthanc's caches does not favour either side.
 */
import { sourceSchema } from '../src/config';
import { syncSchema } from '../src/sync/config';
import { addDays } from '../src/sync/dates';
import { bridgeProcess, type BridgeRun } from './bridgeProcess';
import type { BenchCorpus } from './corpus';
import { corpusFloor, type FloorPhase } from './qidoFloor';

export interface FullSyncResult {
  corpus: BenchCorpus['counts'];
  settings: { concurrency: number; pageSize: number; detailBatchSize: number; windowDays: number; batchSize: number };
  floor: { listing: FloorPhase; perStudyDetails: FloorPhase; batchedDetails: FloorPhase; perStudyMs: number; batchedMs: number };
  /** pacsCpuMs: Orthanc's CPU time over the bridge's whole process; cpuMs: the bridge's own. */
  bridge: { runMs: number; runsMs: number[]; processMs: number; qidoRequests: number; written: number; maxRssMb: number; cpuMs: number; pacsCpuMs: number };
  /** Bridge run time ÷ floor time. */
  ratios: { toBatchedFloor: number; toPerStudyFloor: number };
  repoll: { runMs: number; qidoRequests: number; written: number; fetched: number; ratioToListing: number };
  qidoRequestsPerNewStudy: number;
}

const SOURCE = { id: 'bench', defaultTimezone: 'Asia/Taipei' };

const mean = (a: number | undefined, b: number | undefined) => ((a ?? NaN) + (b ?? NaN)) / 2;
const meanPhase = (a: FloorPhase, b: FloorPhase): FloorPhase => ({ ms: mean(a.ms, b.ms), requests: mean(a.requests, b.requests), pacsCpuMs: mean(a.pacsCpuMs, b.pacsCpuMs) });

export async function runFullSync(corpus: BenchCorpus, log: (line: string) => void = () => {}): Promise<FullSyncResult> {
  const source = sourceSchema.parse({ ...SOURCE, qidoBase: corpus.orthanc.dicomWebBase });
  const floor = corpusFloor(corpus, source, { pacsCpuMs: corpus.orthancCpuMs });
  const sync = syncSchema.parse({});
  // Two bridges with stores of their own: each full sync starts empty.
  const bridges = [1, 2].map(() => bridgeProcess({ sources: [source], logging: { level: 'warn' } }));
  const backfill = async (n: number, to = corpus.to): Promise<BridgeRun & { pacsCpuMs: number }> => {
    const cpuBefore = corpus.orthancCpuMs();
    const run = await bridges[n]!.run(['backfill', '--from', corpus.from, '--to', to, '--no-progress']);
    return { ...run, pacsCpuMs: corpus.orthancCpuMs() - cpuBefore };
  };
  const checked = <T extends BridgeRun>(r: T, what: string): T => {
    if (r.summary.status !== 'ok') throw new Error(`${what}: ${JSON.stringify(r.summary)}`);
    return r;
  };
  try {
    await floor.listStudies(); // warm-up: Orthanc's and the OS's caches, for both sides alike
    log('floor: listing, batched details, per-study details');
    const listingA = await floor.listStudies();
    if (listingA.uids.length !== corpus.counts.studies) throw new Error(`floor listed ${listingA.uids.length} of ${corpus.counts.studies} studies`);
    const batchedA = await floor.batchedDetails(listingA.uids);
    const perStudy = await floor.perStudyDetails(listingA.uids);
    log('bridge: full sync 1');
    const first = checked(await backfill(0), 'full sync');
    log('floor: batched details, listing');
    const batchedB = await floor.batchedDetails(listingA.uids);
    const listingB = await floor.listStudies();
    log('bridge: full sync 2, then an unchanged re-poll');
    const second = checked(await backfill(1), 'full sync');
    // One day more than the completed backfill, so it is not skipped as already done: every study is listed again.
    const repoll = checked(await backfill(1, addDays(corpus.to, 1)), 're-poll');

    const listing = meanPhase(listingA.phase, listingB.phase);
    const batchedDetails = meanPhase(batchedA, batchedB);
    const perStudyMs = listing.ms + perStudy.ms;
    const batchedMs = listing.ms + batchedDetails.ms;
    const runMs = (first.runMs + second.runMs) / 2;
    const written = first.summary.counts.written ?? 0;
    if (written !== corpus.counts.studies) throw new Error(`full sync wrote ${written} of ${corpus.counts.studies} studies`);
    return {
      corpus: corpus.counts,
      settings: { concurrency: source.concurrency, pageSize: source.pageSize, detailBatchSize: source.detailBatchSize, windowDays: sync.windowDays, batchSize: sync.batchSize },
      floor: { listing, perStudyDetails: perStudy, batchedDetails, perStudyMs, batchedMs },
      bridge: {
        runMs,
        runsMs: [first.runMs, second.runMs],
        processMs: (first.processMs + second.processMs) / 2,
        qidoRequests: first.summary.counts.qidoRequests ?? NaN,
        written,
        maxRssMb: Math.max(first.maxRssMb, second.maxRssMb),
        cpuMs: (first.cpuMs + second.cpuMs) / 2,
        pacsCpuMs: (first.pacsCpuMs + second.pacsCpuMs) / 2,
      },
      ratios: { toBatchedFloor: runMs / batchedMs, toPerStudyFloor: runMs / perStudyMs },
      repoll: {
        runMs: repoll.runMs,
        qidoRequests: repoll.summary.counts.qidoRequests ?? NaN,
        written: repoll.summary.counts.written ?? NaN,
        fetched: repoll.summary.counts.fetched ?? NaN,
        ratioToListing: repoll.runMs / listing.ms,
      },
      qidoRequestsPerNewStudy: (first.summary.counts.qidoRequests ?? NaN) / written,
    };
  } finally {
    floor.close();
    bridges.forEach((b) => b.dispose());
  }
}
