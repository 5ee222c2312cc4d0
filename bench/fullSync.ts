/**
 * Full sync against the QIDO floors, on one corpus: the floors' phases, the bridge's full sync (a backfill of
 * the corpus's StudyDate range into its embedded store, run as the real executable with default settings, so
 * with the profile guard on), the same with the guard off, then an unchanged re-poll. Floors and bridges
 * alternate in rounds (floor, guard on, guard off, floor…) and the medians are reported, so a drift in
 * Orthanc's caches or a slow moment of the machine favours no side.
 */
import { sourceSchema } from '../src/config';
import { syncSchema } from '../src/sync/config';
import { addDays } from '../src/time';
import { bridgeProcess, type BridgeRun } from './bridgeProcess';
import type { BenchCorpus } from './corpus';
import { corpusFloor, type FloorPhase } from './qidoFloor';
import { median } from './stats';

export interface FullSyncResult {
  corpus: BenchCorpus['counts'];
  settings: { concurrency: number; pageSize: number; detailBatchSize: number; windowDays: number; batchSize: number };
  floor: {
    listing: FloorPhase;
    perStudyDetails: FloorPhase;
    batchedDetails: FloorPhase;
    perStudyMs: number;
    batchedMs: number;
  };
  /** pacsCpuMs: Orthanc's CPU time over the bridge's whole process; cpuMs: the bridge's own. */
  bridge: {
    runMs: number;
    runsMs: number[];
    processMs: number;
    qidoRequests: number;
    written: number;
    maxRssMb: number;
    cpuMs: number;
    pacsCpuMs: number;
  };
  /** The same full sync with sinks.validation.enabled false (the bridge above runs with the default, on). */
  guardOff?: { runMs: number; runsMs: number[]; cpuMs: number; maxRssMb: number; toBatchedFloor: number };
  /** Bridge run time ÷ floor time. */
  ratios: { toBatchedFloor: number; toPerStudyFloor: number };
  repoll: { runMs: number; qidoRequests: number; written: number; fetched: number; ratioToListing: number };
  qidoRequestsPerNewStudy: number;
}

const SOURCE = { id: 'bench', defaultTimezone: 'Asia/Taipei' };

/** The phase of median time, so its requests and PACS CPU belong to that same run. */
const medianPhase = (phases: FloorPhase[]): FloorPhase => {
  const m = median(phases.map((p) => p.ms));
  return { ...[...phases].sort((a, b) => Math.abs(a.ms - m) - Math.abs(b.ms - m))[0]!, ms: m };
};

export async function runFullSync(
  corpus: BenchCorpus,
  log: (line: string) => void = () => {},
  rounds = 3,
): Promise<FullSyncResult> {
  const source = sourceSchema.parse({ ...SOURCE, qidoBase: corpus.orthanc.dicomWebBase });
  const floor = corpusFloor(corpus, source, { pacsCpuMs: corpus.orthancCpuMs });
  const sync = syncSchema.parse({});
  // A bridge with a store of its own per round: each full sync starts empty.
  const bridges = Array.from({ length: rounds }, () =>
    bridgeProcess({ sources: [source], logging: { level: 'warn' } }),
  );
  const unguarded = Array.from({ length: rounds }, () =>
    bridgeProcess({ sources: [source], logging: { level: 'warn' }, sinks: { validation: { enabled: false } } }),
  );
  const backfill = async (n: number, to = corpus.to, which = bridges): Promise<BridgeRun & { pacsCpuMs: number }> => {
    const cpuBefore = corpus.orthancCpuMs();
    const run = await which[n]!.run(['backfill', '--from', corpus.from, '--to', to, '--no-progress']);
    if (run.summary.status !== 'ok') throw new Error(`bridge backfill: ${JSON.stringify(run.summary)}`);
    return { ...run, pacsCpuMs: corpus.orthancCpuMs() - cpuBefore };
  };
  try {
    const warm = await floor.listStudies(); // warm-up: Orthanc's and the OS's caches, for both sides alike
    const uids = warm.uids;
    if (uids.length !== corpus.counts.studies)
      throw new Error(`floor listed ${uids.length} of ${corpus.counts.studies} studies`);
    // Rounds of floor then bridge; medians over the rounds, so one slow moment does not decide.
    const listings: FloorPhase[] = [];
    const batched: FloorPhase[] = [];
    const runs: Array<BridgeRun & { pacsCpuMs: number }> = [];
    const offRuns: Array<BridgeRun & { pacsCpuMs: number }> = [];
    let perStudy: FloorPhase | undefined;
    for (let round = 0; round < rounds; round++) {
      log(
        `round ${round + 1} of ${rounds}: floor listing and batched details${round === 0 ? ', per-study details' : ''}, then the bridge with the guard on and off`,
      );
      listings.push((await floor.listStudies()).phase);
      batched.push(await floor.batchedDetails(uids));
      perStudy ??= await floor.perStudyDetails(uids); // once: it is the slow one
      runs.push(await backfill(round));
      offRuns.push(await backfill(round, corpus.to, unguarded));
    }
    // One day more than the completed backfill, so it is not skipped as already done: every study is listed again.
    log('bridge: an unchanged re-poll');
    const repoll = await backfill(rounds - 1, addDays(corpus.to, 1));

    const listing = medianPhase(listings);
    const batchedDetails = medianPhase(batched);
    const perStudyMs = listing.ms + perStudy!.ms;
    const batchedMs = listing.ms + batchedDetails.ms;
    const runMs = median(runs.map((r) => r.runMs));
    const offMs = median(offRuns.map((r) => r.runMs));
    const first = runs[0]!;
    const written = first.summary.counts.written ?? 0;
    if (written !== corpus.counts.studies)
      throw new Error(`full sync wrote ${written} of ${corpus.counts.studies} studies`);
    if (offRuns[0]!.summary.counts.written !== written)
      throw new Error(`full sync without the guard wrote ${offRuns[0]!.summary.counts.written} studies`);
    return {
      corpus: corpus.counts,
      settings: {
        concurrency: source.concurrency,
        pageSize: source.pageSize,
        detailBatchSize: source.detailBatchSize,
        windowDays: sync.windowDays,
        batchSize: sync.batchSize,
      },
      floor: { listing, perStudyDetails: perStudy!, batchedDetails, perStudyMs, batchedMs },
      bridge: {
        runMs,
        runsMs: runs.map((r) => r.runMs),
        processMs: median(runs.map((r) => r.processMs)),
        qidoRequests: first.summary.counts.qidoRequests ?? NaN,
        written,
        maxRssMb: Math.max(...runs.map((r) => r.maxRssMb)),
        cpuMs: median(runs.map((r) => r.cpuMs)),
        pacsCpuMs: median(runs.map((r) => r.pacsCpuMs)),
      },
      guardOff: {
        runMs: offMs,
        runsMs: offRuns.map((r) => r.runMs),
        cpuMs: median(offRuns.map((r) => r.cpuMs)),
        maxRssMb: Math.max(...offRuns.map((r) => r.maxRssMb)),
        toBatchedFloor: offMs / batchedMs,
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
    [...bridges, ...unguarded].forEach((b) => b.dispose());
  }
}
