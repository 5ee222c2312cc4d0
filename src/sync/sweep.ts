/**
 * The full-range sweep: every StudyDate the PACS may hold (settings.sweep.from through 9999-12-31, in
 * adaptive windows) and the undated studies, compared by fingerprint with the store like a poll. It
 * finds late arrivals (an old StudyDate stored after its days were polled), changes to studies of any
 * age, and, once the listing is complete, the studies that vanished (the deletion policy applies).
 * Progress is checkpointed per window in the store, so a sweep resumes after a crash or a stop.
 */
import type { Logger } from 'pino';
import type { SourceConfig } from '../config';
import {
  type PacsSource,
  type StudyWindow,
  AdaptiveWindows,
  FixedWindows,
  type WindowPlanner,
  PacsError,
} from '../dicomweb';
import { type DicomDataset, studyUidOf } from '../dicom';
import type { Sink } from '../sinks';
import type { HeldRemovals, RunCounts, StateStore, SweepRecord } from '../state';
import { maxRemovalsOf, type SyncSettings } from './config';
import { addDays } from '../time';
import { planWindows } from './dates';
import { describeError, isSourceOutage, SourceUnavailableError } from './errors';
import { heldRemovals, removeVanished } from './reconcile';
import type { StudySyncRun } from './run';

/** The last StudyDate a sweep lists: the far future, so future-dated studies (clock errors) are found too. */
export const SWEEP_END = '99991231';

/** Study UIDs a sweep run remembers as handled before it lets them go (memory on a PACS of millions). */
const HANDLED_KEPT = 100_000;

/**
 * Windows for a run over from..to: adaptive (sized by the store's per-day counts and by what each listing
 * returns, about `windowPages` pages each) or, with `windowPages` 0, fixed windows of `windowDays`.
 */
export async function windowPlanner(
  store: StateStore,
  sourceId: string,
  settings: SyncSettings,
  source: Pick<SourceConfig, 'pageSize' | 'serverLimit'>,
  from: string,
  to: string,
): Promise<WindowPlanner> {
  const known = await store.studies.studiesPerDay(sourceId, from, to);
  if (!settings.windowPages) return new FixedWindows(fixedWindows(known, settings, from, to));
  const page = Math.min(source.pageSize, source.serverLimit ?? Infinity);
  // Half a page under a whole number of pages: a window then wastes at most part of its last page.
  let target = Math.max(1, Math.floor((settings.windowPages - 0.5) * page));
  // Stay clear of a server's cap on a whole search, which would make every window truncated and split.
  if (source.serverLimit) target = Math.min(target, Math.max(1, Math.floor(source.serverLimit * 0.8)));
  return new AdaptiveWindows({
    from,
    to,
    targetStudies: target,
    initialDays: settings.windowDays,
    known,
    maxStudies: 4 * target,
  });
}

/**
 * Fixed windows over the days the store knows studies on; the days before and after them (up to the
 * sweep's far-future end) are one window each, so an empty millennium is not thousands of queries.
 */
function fixedWindows(perDay: Map<string, number>, settings: SyncSettings, from: string, to: string): StudyWindow[] {
  const known = [...perDay.keys()].sort();
  const tomorrow = addDays(new Date().toISOString().slice(0, 10).replace(/-/g, ''), 1);
  const last = to < tomorrow ? to : tomorrow;
  // Nothing known yet: only the last day is windowed, the rest is one window each side.
  const start = known[0] ?? last;
  const first = start > from ? start : from;
  const out: StudyWindow[] = [];
  if (first > from) out.push({ from, to: addDays(first, -1) });
  if (first <= last) out.push(...planWindows(first, last, settings.windowDays));
  if (last < to) out.push({ from: addDays(last, 1), to });
  return out;
}

export interface SweepContext {
  run: StudySyncRun;
  store: StateStore;
  sinks: Sink[];
  source: PacsSource;
  sourceConfig: SourceConfig;
  settings: SyncSettings;
  log: Logger;
  now: () => Date;
  stopRequested: () => boolean;
}

export interface SweepOutcome {
  complete: boolean;
  counts: RunCounts;
  sweep: SweepRecord;
}

/** One sweep, or the rest of an interrupted one. */
export async function sweepSource(ctx: SweepContext): Promise<SweepOutcome> {
  const sweep = await ctx.store.sweeps.open(ctx.sourceConfig.id, ctx.now());
  const counts: RunCounts = { listed: 0 };
  const unresolvedBefore = ctx.source.stats.unresolved ?? 0;
  const stopped = (): SweepOutcome => ({ complete: false, counts, sweep });
  ctx.log.info(
    { sweepId: sweep.id, startedAt: sweep.startedAt, resumeAfter: sweep.throughDate, undatedDone: sweep.undatedDone },
    sweep.throughDate || sweep.undatedDone ? 'sweep resumed' : 'sweep started',
  );

  // The undated scan runs beside the dated listing: the listing has one query in flight at a time, and on a
  // PACS without Empty Value Matching the scan is a pass over every study.
  const undatedListing =
    ctx.settings.undatedSweep && !sweep.undatedDone ? listUndated(ctx) : Promise.resolve(undefined);
  undatedListing.catch(() => undefined); // awaited below; a stop before then must not leave it unhandled
  let datedDone = false;
  try {
    datedDone = await sweepDated(ctx, sweep, counts);
  } finally {
    if (!datedDone) await undatedListing.catch(() => undefined); // nothing of the run goes on after it ends
  }
  if (!datedDone) return stopped();
  if (!(await sweepUndated(ctx, sweep, counts, await undatedListing))) return stopped();
  const unresolved = (ctx.source.stats.unresolved ?? 0) - unresolvedBefore;
  const reconciled = await reconcileVanished(ctx, sweep, counts, unresolved);
  if (!reconciled) return stopped();
  return { complete: true, counts, sweep: await completeSweep(ctx, sweep, counts, unresolved, reconciled.held) };
}

/** 1. Every StudyDate, window after window; each settled window moves the sweep's checkpoint. False when stopped. */
async function sweepDated(ctx: SweepContext, sweep: SweepRecord, counts: RunCounts): Promise<boolean> {
  const from = sweep.throughDate ? addDays(sweep.throughDate, 1) : ctx.settings.sweep.from;
  if (sweep.throughDate === SWEEP_END || from > SWEEP_END) return true;
  const listedIn = new Map<string, number>();
  const planner = await windowPlanner(ctx.store, ctx.sourceConfig.id, ctx.settings, ctx.sourceConfig, from, SWEEP_END);
  return ctx.run.syncWindows(planner, {
    onListed: (w, n) => listedIn.set(w.from, n),
    onWindowDone: async (w) => {
      const n = listedIn.get(w.from) ?? 0;
      counts.listed! += n;
      await ctx.store.sweeps.advance(sweep.id, { throughDate: w.to, listed: n });
      ctx.run.trimHandled(HANDLED_KEPT);
    },
  });
}

/** 2. The undated studies, which no StudyDate window finds. False when stopped. */
async function sweepUndated(
  ctx: SweepContext,
  sweep: SweepRecord,
  counts: RunCounts,
  undated: DicomDataset[] | undefined,
): Promise<boolean> {
  if (!undated) return true;
  if (!(await ctx.run.syncDatasets(undated))) return false;
  counts.listed! += undated.length;
  await ctx.store.sweeps.advance(sweep.id, { listed: undated.length, undatedDone: true });
  return true;
}

/** What the reconcile step did: `held`, the removals it held for a person instead of making. */
interface Reconciled {
  held?: HeldRemovals;
}

/** 3. Vanished: known studies no listing has seen since the sweep began. Undefined when stopped. */
async function reconcileVanished(
  ctx: SweepContext,
  sweep: SweepRecord,
  counts: RunCounts,
  unresolved: number,
): Promise<Reconciled | undefined> {
  const sourceId = ctx.sourceConfig.id;
  const vanished = (await ctx.store.studies.unseenSince(sourceId, sweep.startedAt)).filter((s) =>
    s.studyDate ? s.studyDate >= ctx.settings.sweep.from : ctx.settings.undatedSweep,
  );
  const listedInSweep = sweep.listed + counts.listed!;
  counts.vanished = vanished.length;
  counts.unresolved = unresolved;
  if (!vanished.length) return {};
  if (unresolved > 0) {
    // Searches the PACS kept truncating: a study missing from the listing may still be there.
    ctx.log.warn(
      { vanished: vanished.length, unresolved },
      'sweep listing incomplete (PACS truncation); vanished studies left alone',
    );
    return {};
  }
  if (listedInSweep === 0)
    throw new Error(
      `the PACS listed no studies at all while the store has ${vanished.length}; refusing to treat them all as deleted`,
    );
  const held = await holdOf(ctx, vanished.length);
  if (held) {
    counts.held = held.removals;
    ctx.log.warn(
      { wouldRemove: held.removals, studies: held.of, limit: held.limit },
      'removals held for a person (more than reconcile.maxRemovals): none removed; see status',
    );
    return { held };
  }
  return (await removeConfirmed(ctx, vanished, counts)) ? {} : undefined;
}

/**
 * The removals held for a person, decided on the listing's count before any look-up by UID: a PACS that lost
 * a volume would otherwise cost thousands of look-ups at the sweep's pace only to remove nothing.
 */
async function holdOf(ctx: SweepContext, removals: number): Promise<HeldRemovals | undefined> {
  if (ctx.settings.reconcile.deletion === 'ignore') return undefined;
  const sourceId = ctx.sourceConfig.id;
  const [known, last] = await Promise.all([
    ctx.store.studies.counts(sourceId),
    ctx.store.sweeps.lastComplete(sourceId),
  ]);
  // An operator's confirmation of the last sweep's hold (sync --confirm-removals) covers as many as it held.
  const confirmed = last?.held?.confirmedAt ? last.held.removals : 0;
  if (confirmed) ctx.log.info({ confirmed, confirmedAt: last!.held!.confirmedAt }, 'held removals confirmed');
  return heldRemovals({
    removals,
    studies: known.studies - known.removed,
    max: maxRemovalsOf(ctx.settings),
    confirmed,
  });
}

/** Each looked up once by UID, then the deletion action on those still missing. False when stopped. */
async function removeConfirmed(
  ctx: SweepContext,
  vanished: { studyUid: string; studyDate: string | null }[],
  counts: RunCounts,
): Promise<boolean> {
  // A listing glitch must never delete a study.
  const gone = ctx.settings.reconcile.deletion === 'ignore' ? vanished : await confirmVanished(ctx, vanished);
  if (gone === undefined) return false;
  counts.vanished = gone.length;
  const r = await removeVanished({
    store: ctx.store,
    sinks: ctx.sinks,
    sourceId: ctx.sourceConfig.id,
    action: ctx.settings.reconcile.deletion,
    vanished: gone,
    log: ctx.log,
    stopRequested: ctx.stopRequested,
    holdings: ctx.run.holdings,
  });
  counts.removed = r.removed;
  counts.failed = (ctx.run.counts.failed ?? 0) + r.failed;
  return !r.stopped;
}

async function completeSweep(
  ctx: SweepContext,
  sweep: SweepRecord,
  counts: RunCounts,
  unresolved: number,
  held: HeldRemovals | undefined,
): Promise<SweepRecord> {
  const vanished = counts.vanished ?? 0;
  const done = await ctx.store.sweeps.complete(sweep.id, { vanished, unresolved, held, at: ctx.now() });
  // The store's count of distinct studies seen since the sweep began, not the rows listed (a UID listed twice).
  counts.listed = done.listed;
  // A sweep a change feed asked for (it went back) is done once one that started after the request completes.
  await ctx.store.feed.clearSweepRequest(ctx.sourceConfig.id, new Date(sweep.startedAt));
  const { id: sweepId, listed, synced, failing, dead } = done;
  ctx.log.info({ sweepId, listed, synced, failing, dead, vanished, held: held?.removals ?? 0 }, 'sweep complete');
  return done;
}

/**
 * The vanished studies a lookup by StudyInstanceUID also does not find; one that is found after all is synced
 * (and so seen) instead. Undefined when stopped.
 */
async function confirmVanished(
  ctx: SweepContext,
  vanished: { studyUid: string; studyDate: string | null }[],
): Promise<{ studyUid: string; studyDate: string | null }[] | undefined> {
  const gone: { studyUid: string; studyDate: string | null }[] = [];
  for (const study of vanished) {
    if (ctx.stopRequested()) return undefined;
    let found: DicomDataset[];
    try {
      found = await ctx.source.searchStudies({ StudyInstanceUID: study.studyUid }, { limit: 2, offset: 0 });
    } catch (err) {
      if (isSourceOutage(err)) throw new SourceUnavailableError(err);
      // An answer that is not DICOM rows (HTML, rows without a UID) proves nothing gone, and the next one would
      // not either: the run fails before anything is removed.
      if (isMalformedAnswer(err)) throw err;
      ctx.log.warn(
        { studyUid: study.studyUid, err: describeError(err) },
        'vanished study could not be looked up; kept',
      );
      continue;
    }
    const match = found.find((ds) => studyUidOf(ds) === study.studyUid);
    if (!match) gone.push(study);
    else {
      ctx.log.warn(
        { studyUid: study.studyUid },
        'study missing from the sweep listing but found by UID; synced, not removed',
      );
      if (!(await ctx.run.syncDatasets([match]))) return undefined;
    }
  }
  return gone;
}

/** A PACS answer the source layer refused as malformed (src/dicomweb: PacsError of kind bad-response). */
function isMalformedAnswer(err: unknown): boolean {
  return err instanceof PacsError && err.kind === 'bad-response';
}

async function listUndated(ctx: SweepContext): Promise<DicomDataset[]> {
  try {
    return await ctx.source.findUndatedStudies(ctx.settings.filter);
  } catch (err) {
    throw new SourceUnavailableError(err);
  }
}
