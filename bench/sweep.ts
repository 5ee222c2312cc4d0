/**
 * What a full-range sweep and an unchanged poll cost against the PACS's listing floor (pages of the corpus's
 * whole StudyDate range, one after another: bench/qidoFloor.ts), in QIDO requests and time, on one corpus.
 * The sync runs in this process (src/sync, default settings, an embedded store of its own) with the sweep's
 * request budget lifted, so what is measured is the work, not the pacing; the docs extrapolate the paced cost.
 * Floor and bridge alternate in rounds and the medians are reported.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sourceSchema } from '../src/config';
import { createEmbeddedSink } from '../src/sinks/embeddedSink';
import { openSqliteStore } from '../src/state';
import { createSyncService, type RunSummary, type SyncConfigInput } from '../src/sync';
import { daysBetween, todayIn } from '../src/time';
import type { BenchCorpus } from './corpus';
import { corpusFloor, type FloorPhase } from './qidoFloor';
import { median } from './stats';

export interface CostRow {
  requests: number;
  ms: number;
  /** Bridge ÷ floor listing. */
  requestRatio: number;
  timeRatio: number;
}

export interface SweepCostResult {
  corpus: BenchCorpus['counts'] & { from: string; to: string; days: number };
  floor: { requests: number; ms: number; runsMs: number[] };
  /** An unchanged sweep: every StudyDate from 0001-01-01 to 9999-12-31 and the undated scan. */
  sweep: CostRow & { runsMs: number[]; listed: number; written: number; windows: number };
  /** A poll whose range is the corpus's (lookback back to its first day), nothing changed. */
  poll: CostRow & { runsMs: number[]; windows: number };
  /** The same poll with fixed 7-day windows (windowPages 0), as before adaptive windows. */
  fixedPoll: { requests: number; ms: number; windows: number };
  /** The first sweep into an empty store (a full sync): for scale. */
  firstSweep: { requests: number; ms: number; written: number };
}

const SOURCE = { id: 'bench', defaultTimezone: 'Asia/Taipei' };
const runMs = (s: RunSummary) => Date.parse(s.endedAt) - Date.parse(s.startedAt);

export async function runSweepCost(
  corpus: BenchCorpus,
  log: (line: string) => void = () => {},
  rounds = 3,
): Promise<SweepCostResult> {
  const source = sourceSchema.parse({ ...SOURCE, qidoBase: corpus.orthanc.dicomWebBase });
  const floor = corpusFloor(corpus, source);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-sweep-'));
  const store = openSqliteStore(path.join(dir, 'bridge.sqlite'));
  const today = todayIn(SOURCE.defaultTimezone, new Date());
  const base: SyncConfigInput = {
    sweep: { maxRequestsPerMinute: 100_000 },
    // The poll re-lists the whole corpus: its lookback reaches back to the corpus's first day.
    lookbackDays: daysBetween(corpus.from, today),
  };
  const service = (over: SyncConfigInput = {}) =>
    createSyncService({
      config: { sources: [source], sync: { ...base, ...over } },
      store,
      sinks: [createEmbeddedSink(store)],
    });
  const ok = (s: RunSummary) => {
    if (s.status !== 'ok') throw new Error(`bridge ${s.kind}: ${JSON.stringify(s)}`);
    return s;
  };
  try {
    log('first sweep into an empty store (full sync)');
    const first = ok(await service().sweep(SOURCE.id));
    if (first.counts.written !== corpus.counts.studies)
      throw new Error(`first sweep wrote ${first.counts.written} of ${corpus.counts.studies}`);
    await floor.listStudies(); // warm-up for both sides alike
    const floors: FloorPhase[] = [];
    const sweeps: RunSummary[] = [];
    const polls: RunSummary[] = [];
    for (let round = 0; round < rounds; round++) {
      log(`round ${round + 1} of ${rounds}: floor listing, unchanged sweep, unchanged poll`);
      floors.push((await floor.listStudies()).phase);
      sweeps.push(ok(await service().sweep(SOURCE.id)));
      polls.push(ok(await service().runOnce(SOURCE.id)));
    }
    const fixed = ok(await service({ windowPages: 0 }).runOnce(SOURCE.id));
    const floorMs = median(floors.map((f) => f.ms));
    const floorRequests = floors[0]!.requests;
    const row = (runs: RunSummary[]) => {
      const ms = median(runs.map(runMs));
      const requests = runs[0]!.counts.qidoRequests ?? NaN;
      return {
        requests,
        ms,
        requestRatio: requests / floorRequests,
        timeRatio: ms / floorMs,
        runsMs: runs.map(runMs),
        windows: runs[0]!.counts.windows ?? 0,
      };
    };
    const sweep = sweeps[0]!;
    if (sweep.counts.written !== 0 || sweep.counts.listed !== corpus.counts.studies)
      throw new Error(`unchanged sweep: ${JSON.stringify(sweep.counts)}`);
    return {
      corpus: { ...corpus.counts, from: corpus.from, to: corpus.to, days: daysBetween(corpus.from, corpus.to) + 1 },
      floor: { requests: floorRequests, ms: floorMs, runsMs: floors.map((f) => f.ms) },
      sweep: { ...row(sweeps), listed: sweep.counts.listed ?? 0, written: sweep.counts.written ?? 0 },
      poll: row(polls),
      fixedPoll: { requests: fixed.counts.qidoRequests ?? NaN, ms: runMs(fixed), windows: fixed.counts.windows ?? 0 },
      firstSweep: { requests: first.counts.qidoRequests ?? NaN, ms: runMs(first), written: first.counts.written ?? 0 },
    };
  } finally {
    floor.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
