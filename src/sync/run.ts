/**
 * One run over one source: discovery through StudyDate windows (and the undated sweep), change
 * detection by fingerprint, batched detail fetches, mapping, sink writes, and per-study state.
 * A failing study is recorded and the run goes on; only an unreachable PACS or sink ends a run early.
 */
import type { ImagingStudy } from 'fhir/r4';
import {
  WindowOverflowError,
  type StudyDetails,
  type StudyWindow,
  FixedWindows,
  TRUNCATED_BY_PACS,
  truncationOf,
  uidBatches,
  type WindowPlanner,
} from '../dicomweb';
import { formatDa, readDate, studyUidOf, valueOf, type DicomDataset, Tag } from '../dicom';
import { type MapResult, patientFacts as patientFactsFromDicom } from '../mapping';
import type { PatientFacts, Sink, StudyWrite, WriteOutcome } from '../sinks';
import type { RunCounts, StudyState, SyncedStudy } from '../state';
import { detailConflict, quarantineStudy, splitStudyConflicts } from './conflicts';
import type { CombinedStudy, StudyHoldings } from './holdings';
import { decideStudy, retryDelaySeconds } from './decide';
import { scrubPatientData } from './scrub';
import { describeError, isSinkOutage, isSourceOutage, SinkUnavailableError, SourceUnavailableError } from './errors';
import { mergeSinkOutcomes } from './outcomes';
import type { RunContext } from './types';

/** A planner whose next window may come later: a shared backfill's next claimed work item (src/sync/work.ts). */
export type RunPlanner = Omit<WindowPlanner, 'next'> & {
  next(): StudyWindow | undefined | Promise<StudyWindow | undefined>;
};

interface Candidate {
  uid: string;
  dataset: DicomDataset;
  fingerprint: string;
  studyDate: string | null;
  state?: StudyState;
  /** When this run's listing saw it (freshness is measured from the first such sighting). */
  seenAt?: Date;
}

export function emptyCounts(): Required<
  Pick<
    RunCounts,
    'windows' | 'found' | 'fetched' | 'written' | 'unchanged' | 'skipped' | 'failed' | 'dead' | 'quarantined'
  >
> {
  return {
    windows: 0,
    found: 0,
    fetched: 0,
    written: 0,
    unchanged: 0,
    skipped: 0,
    failed: 0,
    dead: 0,
    quarantined: 0,
  };
}

export class StudySyncRun {
  readonly counts = emptyCounts();
  /** Studies already handled in this run (lookback, undated sweep and retries overlap). */
  private readonly handled = new Set<string>();
  /** Studies waiting to be fetched, and how many have entered and left the queue in this run. */
  private readonly queue: Candidate[] = [];
  private enqueued = 0;
  private dequeued = 0;

  constructor(private readonly ctx: RunContext) {}

  /**
   * Forgets which studies this run has handled once there are more than `max`: a sweep of millions of
   * studies must not hold every UID. Its windows do not overlap, so at worst a study listed twice is synced twice.
   */
  trimHandled(max: number): void {
    if (this.handled.size > max) this.handled.clear();
  }

  private get sourceId(): string {
    return this.ctx.sourceConfig.id;
  }

  /** The sources' holdings this run writes by (a sweep's removals release them too). */
  get holdings(): StudyHoldings {
    return this.ctx.holdings;
  }

  /**
   * Discovers and syncs StudyDate windows in order. The next window is listed while the current one's
   * studies are fetched and written, and batches run across window ends (full batches mean fewer,
   * fuller detail queries and sink transactions). A window is done, `onWindowDone`, once every study
   * it listed is settled. False when stopped.
   */
  async syncWindows(
    windows: StudyWindow[] | RunPlanner,
    hooks: {
      onWindowStart?: (w: StudyWindow) => void;
      onWindowDone?: (w: StudyWindow) => void | Promise<void>;
      /** A window's listing arrived, with how many studies the PACS reported in it. */
      onListed?: (w: StudyWindow, studies: number) => void;
    } = {},
  ): Promise<boolean> {
    // Adaptive planners size each window from the listings before it, so windows are planned one at a time.
    const planner = Array.isArray(windows) ? new FixedWindows(windows) : windows;
    // Windows listed but not yet done, with the queue position their last study has.
    const open: { window: StudyWindow; end: number }[] = [];
    const settle = async () => {
      while (open.length && open[0]!.end <= this.dequeued) await hooks.onWindowDone?.(open.shift()!.window);
    };
    const first = await planner.next();
    let listing = first ? this.listPlanned(planner, first) : undefined;
    while (listing) {
      const { window, datasets } = await listing;
      hooks.onListed?.(window, datasets.length);
      if (this.ctx.stopRequested()) return false;
      const following = await planner.next();
      const last = !following;
      listing = following ? prefetched(this.listPlanned(planner, following)) : undefined;
      hooks.onWindowStart?.(window);
      this.enqueue(await this.decide(await this.screen(datasets)));
      open.push({ window, end: this.enqueued });
      await settle();
      if (!(await this.drain(last, settle))) {
        await listing?.catch(() => undefined); // nothing of this run goes on after it ends
        return false;
      }
    }
    return true;
  }

  /** Lists a planned window; one that passes its cap is planned again, smaller, and listed instead. */
  private async listPlanned(
    planner: RunPlanner,
    window: StudyWindow,
  ): Promise<{ window: StudyWindow; datasets: DicomDataset[] }> {
    for (;;) {
      try {
        const datasets = await this.listWindow(window, planner.capFor(window));
        planner.listed(window, datasets.length);
        return { window, datasets };
      } catch (err) {
        if (!(err instanceof SourceUnavailableError && err.cause instanceof WindowOverflowError)) throw err;
        this.ctx.log.debug({ window, seen: err.cause.seen }, 'window too dense; planned smaller');
        window = planner.overflowed(window, err.cause.dates);
      }
    }
  }

  private async listWindow(window: StudyWindow, maxStudies?: number): Promise<DicomDataset[]> {
    let datasets: DicomDataset[];
    try {
      const { filter } = this.ctx.settings;
      datasets = await (maxStudies === undefined
        ? this.ctx.source.findStudies(window, filter)
        : this.ctx.source.findStudies(window, filter, { maxStudies }));
    } catch (err) {
      throw new SourceUnavailableError(err);
    }
    this.counts.windows++;
    this.ctx.log.debug({ window, studies: datasets.length }, 'window listed');
    return datasets;
  }

  /** Studies without a StudyDate, which no window finds. */
  async syncUndated(): Promise<boolean> {
    let datasets: DicomDataset[];
    try {
      datasets = await this.ctx.source.findUndatedStudies(this.ctx.settings.filter);
    } catch (err) {
      throw new SourceUnavailableError(err);
    }
    return this.syncDatasets(datasets);
  }

  /**
   * Failed studies whose retry is due but that no window of this run listed (older than the
   * lookback, or replayed dead letters): looked up one by one by StudyInstanceUID.
   */
  async syncDueRetries(): Promise<boolean> {
    const due = (await this.ctx.store.studies.dueRetries(this.sourceId, this.ctx.now())).filter(
      (s) => !this.handled.has(s.studyUid),
    );
    for (const state of due) {
      if (this.ctx.stopRequested()) return false;
      let found: DicomDataset[];
      try {
        found = await this.ctx.source.searchStudies({ StudyInstanceUID: state.studyUid }, { limit: 2, offset: 0 });
      } catch (err) {
        if (isSourceOutage(err)) throw new SourceUnavailableError(err);
        await this.recordFailures(
          [
            {
              uid: state.studyUid,
              dataset: {},
              fingerprint: state.fingerprint ?? '',
              studyDate: state.studyDate,
              state,
            },
          ],
          `PACS: ${describeError(err)}`,
          true,
        );
        continue;
      }
      const matches = found.filter((ds) => studyUidOf(ds) === state.studyUid);
      if (!matches.length) {
        this.handled.add(state.studyUid);
        await this.recordFailures(
          [
            {
              uid: state.studyUid,
              dataset: {},
              fingerprint: state.fingerprint ?? '',
              studyDate: state.studyDate,
              state,
            },
          ],
          'study not found on the PACS',
          true,
          false,
        );
        continue;
      }
      if (!(await this.syncDatasets(matches))) return false;
    }
    return true;
  }

  /** Decides, fetches, maps and writes the given study-level results. False when stopped. */
  async syncDatasets(datasets: DicomDataset[]): Promise<boolean> {
    this.enqueue(await this.decide(await this.screen(datasets)));
    return this.drain(true);
  }

  /**
   * Discovery by Study Instance UID (a change feed's studies): their study-level results, by UID-list
   * matching where the PACS supports it, then decided, fetched and written as any listed study.
   * `missing`: UIDs the PACS (with the sync's filter) did not return. `complete` is false when stopped.
   */
  async syncStudyUids(uids: string[]): Promise<{ complete: boolean; missing: string[] }> {
    const wanted = [...new Set(uids)];
    let datasets: DicomDataset[];
    try {
      datasets = await this.studiesByUid(wanted);
    } catch (err) {
      throw new SourceUnavailableError(err);
    }
    const found = new Set(datasets.map(studyUidOf));
    const missing = wanted.filter((u) => !found.has(u));
    return { complete: await this.syncDatasets(datasets), missing };
  }

  /** Study-level results for these UIDs, with the sync's filter: UID lists where supported, else one by one. */
  private async studiesByUid(uids: string[]): Promise<DicomDataset[]> {
    const { detailBatchSize, serverLimit } = this.ctx.sourceConfig;
    const batched = uids.length > 1 && (await this.ctx.source.supportsUidListMatching());
    const chunks = batched
      ? uidBatches(uids, Math.min(detailBatchSize, serverLimit ?? Infinity))
      : uids.map((u) => [u]);
    const datasets: DicomDataset[] = [];
    for (const chunk of chunks) {
      const match = { ...this.ctx.settings.filter, StudyInstanceUID: chunk.join(',') };
      const asked = new Set(chunk);
      const found = await this.ctx.source.searchStudies(match, { limit: chunk.length, offset: 0 });
      datasets.push(...found.filter((ds) => asked.has(studyUidOf(ds) ?? '')));
    }
    return datasets;
  }

  /** Quarantines study UIDs listed under two patients (src/sync/conflicts.ts); returns the other rows. */
  private async screen(datasets: DicomDataset[]): Promise<DicomDataset[]> {
    const { rows, conflicts } = splitStudyConflicts(datasets);
    for (const c of conflicts) {
      if (this.handled.has(c.uid)) continue;
      this.handled.add(c.uid);
      this.counts.found++;
      const state = await this.ctx.store.studies.get(this.sourceId, c.uid);
      await this.quarantine(
        { uid: c.uid, dataset: c.dataset, fingerprint: '', studyDate: studyDateOf(c.dataset), state },
        c.detail,
      );
    }
    return rows;
  }

  private async quarantine(c: Candidate, detail: string): Promise<void> {
    if (await quarantineStudy(this.ctx, { ...c, fingerprint: c.fingerprint || null }, detail))
      this.counts.quarantined++;
  }

  /** Which studies need fetching; the others are recorded as seen (unchanged, or waiting for a retry). */
  private async decide(datasets: DicomDataset[]): Promise<Candidate[]> {
    const now = this.ctx.now();
    const candidates: Candidate[] = [];
    for (const dataset of datasets) {
      const uid = studyUidOf(dataset);
      if (!uid) {
        this.counts.failed++;
        this.ctx.log.warn('study without a readable StudyInstanceUID skipped');
        continue;
      }
      if (this.handled.has(uid)) continue;
      this.handled.add(uid);
      let fingerprint: string;
      try {
        fingerprint = this.ctx.mapper.studyFingerprint(dataset);
      } catch (err) {
        await this.recordFailures(
          [{ uid, dataset, fingerprint: '', studyDate: studyDateOf(dataset) }],
          `fingerprint: ${describeError(err)}`,
          true,
        );
        continue;
      }
      candidates.push({ uid, dataset, fingerprint, studyDate: studyDateOf(dataset), seenAt: now });
    }
    this.counts.found += candidates.length;

    const states = await this.ctx.store.studies.getMany(
      this.sourceId,
      candidates.map((c) => c.uid),
    );
    const toFetch: Candidate[] = [];
    const seen: string[] = [];
    for (const c of candidates) {
      c.state = states.get(c.uid);
      const decision = decideStudy(c.state, c.fingerprint, now);
      if (decision === 'fetch') toFetch.push(c);
      else {
        if (decision === 'unchanged') this.counts.unchanged++;
        else this.counts.skipped++;
        seen.push(c.uid);
      }
    }
    if (seen.length) await this.ctx.store.studies.touchSeen(this.sourceId, seen, now);
    this.ctx.onStudiesSettled?.(seen.length);
    return toFetch;
  }

  private enqueue(candidates: Candidate[]): void {
    this.queue.push(...candidates);
    this.enqueued += candidates.length;
  }

  /**
   * Fetches, maps and writes queued studies in batches of `batchSize`: only full batches unless `all`.
   * The next batch's details are fetched while this one is mapped and written, so the PACS stays busy.
   * `afterBatch` runs once each batch is settled. False when stopped.
   */
  private async drain(all: boolean, afterBatch?: () => Promise<void>): Promise<boolean> {
    const size = this.ctx.settings.batchSize;
    const take = (): Candidate[] | undefined =>
      this.queue.length >= size || (all && this.queue.length) ? this.queue.splice(0, size) : undefined;
    let batch = take();
    let details = batch && this.fetchDetails(batch);
    while (batch) {
      const fetched = await details!;
      // Details fetched ahead of a stop are dropped uncounted: the next run fetches them again.
      if (this.ctx.stopRequested()) return false;
      const next = take();
      details = next && prefetched(this.fetchDetails(next));
      this.counts.fetched += [...fetched.values()].filter((d) => !('error' in d)).length;
      try {
        await this.syncBatch(batch, fetched);
      } catch (err) {
        await details?.catch(() => undefined); // the run ends: let the fetch ahead finish first
        throw err;
      }
      this.dequeued += batch.length;
      await afterBatch?.();
      batch = next;
    }
    return true;
  }

  private async syncBatch(batch: Candidate[], details: Map<string, StudyDetails | { error: string }>): Promise<void> {
    const mapped: MappedStudy[] = [];
    for (const c of batch) {
      const d = details.get(c.uid);
      if (!d || 'error' in d) continue; // recorded in fetchDetails
      const conflict = detailConflict(c.uid, c.dataset, d);
      if (conflict) {
        await this.quarantine(c, conflict);
        continue;
      }
      const truncated = truncationOf(d, c.dataset);
      if (truncated) {
        // Never written as complete: failing with its reason, retried with the normal backoff.
        await this.recordFailures([c], truncated, true, true, TRUNCATED_BY_PACS);
        continue;
      }
      const result = await this.mapOne(c, d);
      if (result) mapped.push({ candidate: c, result, patient: this.patientFacts(c) });
    }
    await this.writeCombined(mapped);
    this.ctx.onStudiesSettled?.(batch.length);
  }

  /**
   * Writes the mapped studies, each combined with what other sources hold of it. A study another source wrote
   * meanwhile is combined and written again (twice at most: each writer re-checks after recording its own).
   */
  private async writeCombined(mapped: MappedStudy[], round = 0): Promise<void> {
    const combined = await this.ctx.holdings.combine(
      this.sourceId,
      mapped.map((m) => ({ studyUid: m.candidate.uid, ...m.result })),
    );
    const writes: PendingWrite[] = [];
    const unchanged: MappedStudy[] = [];
    for (const m of mapped) {
      const c = m.candidate;
      const k = combined.get(c.uid)!;
      if (!k.ok) await this.quarantine(c, k.conflict);
      // Same content as last written everywhere: only the fingerprint moves on.
      else if (round === 0 && c.state?.contentHash === k.contentHash) unchanged.push(m);
      else writes.push({ mapped: m, write: this.studyWrite(m, k) });
    }
    if (unchanged.length) await this.recordUnchanged(unchanged);
    if (!writes.length) return;
    const written = new Set(await this.writeToSinks(writes));
    if (round >= 2) return;
    const stale = new Set(
      await this.ctx.holdings.changedSince(this.sourceId, new Map([...combined].filter(([uid]) => written.has(uid)))),
    );
    if (!stale.size) return;
    // Written again, not counted again: the run's counts say how many studies it wrote.
    const counted = { written: this.counts.written, unchanged: this.counts.unchanged };
    await this.writeCombined(
      mapped.filter((m) => stale.has(m.candidate.uid)),
      round + 1,
    );
    Object.assign(this.counts, counted);
  }

  private studyWrite(m: MappedStudy, k: Extract<CombinedStudy, { ok: true }>): StudyWrite {
    return {
      sourceId: this.sourceId,
      studyUid: m.candidate.uid,
      imagingStudy: k.imagingStudy,
      endpoint: m.result.endpoint,
      contentHash: k.contentHash,
      ...(m.patient ? { patient: m.patient } : {}),
      ...(k.alsoHeldBy.length ? { alsoHeldBy: k.alsoHeldBy } : {}),
    };
  }

  private async recordUnchanged(unchanged: MappedStudy[]): Promise<void> {
    const at = this.ctx.now();
    await this.ctx.holdings.record(this.sourceId, unchanged.map(holdingOf));
    await this.ctx.store.studies.recordSynced(
      this.sourceId,
      unchanged.map(({ candidate: c }) => ({
        studyUid: c.uid,
        studyDate: c.studyDate,
        fingerprint: c.fingerprint,
        contentHash: c.state!.contentHash!,
        at,
        seenAt: c.seenAt,
      })),
    );
    this.counts.unchanged += unchanged.length;
  }

  /** Details for a batch in one go; when the batch fails for a reason other than an outage, study by study. */
  private async fetchDetails(batch: Candidate[]): Promise<Map<string, StudyDetails | { error: string }>> {
    const out = new Map<string, StudyDetails | { error: string }>();
    const options = {
      instances: this.ctx.sourceConfig.mapping.includeInstances,
      // Enrichment only here: after the fingerprint decided the study is new or changed, before mapping.
      metadata: this.ctx.sourceConfig.enrichment?.wadoMetadata === true,
    };
    try {
      const found = await this.ctx.source.studyDetails(
        batch.map((c) => c.uid),
        options,
      );
      for (const c of batch) out.set(c.uid, found.get(c.uid) ?? { series: [], instances: [] });
      return out;
    } catch (err) {
      if (isSourceOutage(err)) {
        await this.recordFailures(batch, `PACS unavailable: ${describeError(err)}`, false);
        throw new SourceUnavailableError(err);
      }
      this.ctx.log.warn(
        { studies: batch.length, err: describeError(err) },
        'batched detail query failed; fetching study by study',
      );
    }
    for (const [i, c] of batch.entries()) {
      try {
        const found = await this.ctx.source.studyDetails([c.uid], options);
        out.set(c.uid, found.get(c.uid) ?? { series: [], instances: [] });
      } catch (err) {
        if (isSourceOutage(err)) {
          await this.recordFailures(batch.slice(i), `PACS unavailable: ${describeError(err)}`, false);
          throw new SourceUnavailableError(err);
        }
        await this.recordFailures([c], `PACS: ${describeError(err)}`, true);
        out.set(c.uid, { error: describeError(err) });
      }
    }
    return out;
  }

  private async mapOne(c: Candidate, d: StudyDetails): Promise<Extract<MapResult, { ok: true }> | undefined> {
    let result: MapResult;
    try {
      result = this.ctx.mapper.mapStudy(
        { study: c.dataset, series: d.series, instances: d.instances, metadata: d.metadata },
        this.ctx.sourceConfig,
      );
    } catch (err) {
      await this.recordFailures([c], `mapping: ${describeError(err)}`, true);
      return undefined;
    }
    if (!result.ok) {
      await this.recordFailures([c], `mapping: ${result.error.code}: ${result.error.message}`, true);
      return undefined;
    }
    if (result.warnings.length) {
      this.ctx.log.debug({ studyUid: c.uid, warnings: result.warnings.map((w) => w.code) }, 'mapped with warnings');
    }
    return result;
  }

  /** For sinks that link or create Patients; a study without usable patient facts is still written. */
  private patientFacts(c: Candidate): PatientFacts | undefined {
    try {
      return patientFactsFromDicom(c.dataset, this.ctx.sourceConfig);
    } catch (err) {
      // The error's message may quote patient values: only the UID and the error's class are logged.
      const error = err instanceof Error ? err.name : typeof err;
      this.ctx.log.warn({ studyUid: c.uid, error }, 'patient facts could not be built; study written without them');
      return undefined;
    }
  }

  /** Every sink gets the batch; a study counts as written only when all sinks accepted it. Returns those written. */
  private async writeToSinks(writes: PendingWrite[]): Promise<string[]> {
    const perSink: Map<string, WriteOutcome>[] = [];
    for (const sink of this.ctx.sinks) perSink.push(await this.sinkOutcomes(sink, writes));
    const at = this.ctx.now();
    let outage: SinkUnavailableError | undefined;
    const synced: SyncedStudy[] = [];
    const notOurFault: Candidate[] = [];
    const rejected: { candidate: Candidate; error: string }[] = [];
    const held: MappedStudy[] = [];
    const sinkNames = this.ctx.sinks.map((s) => s.name);
    for (const { mapped, write } of writes) {
      const c = mapped.candidate;
      const outcome = mergeSinkOutcomes(c.uid, sinkNames, perSink);
      if (outcome.kind === 'outage') {
        // Not the study's fault: kept for the next run, no attempt charged, never dead-lettered.
        outage ??= new SinkUnavailableError(outcome.sink, outcome.error);
        notOurFault.push(c);
        continue;
      }
      if (outcome.kind === 'rejected') {
        rejected.push({ candidate: c, error: outcome.error });
        continue;
      }
      const { first } = outcome;
      held.push(mapped);
      synced.push({
        studyUid: c.uid,
        studyDate: c.studyDate,
        fingerprint: c.fingerprint,
        contentHash: write.contentHash,
        resourceId: first?.resourceId ?? write.imagingStudy.id ?? null,
        versionId: first?.versionId ?? null,
        at,
        seenAt: c.seenAt,
      });
      if (outcome.unchanged) this.counts.unchanged++;
      else this.counts.written++;
    }
    // The holding first: a run combining the same study from another source from now on includes this one.
    await this.ctx.holdings.record(this.sourceId, held.map(holdingOf));
    if (synced.length) await this.ctx.store.studies.recordSynced(this.sourceId, synced);
    if (outage && notOurFault.length) await this.recordFailures(notOurFault, outage.message, false);
    for (const r of rejected) await this.recordFailures([r.candidate], r.error, true);
    if (outage) throw outage;
    return synced.map((s) => s.studyUid);
  }

  /** One sink's outcome per study UID; a batch the sink throws on fails each of its studies, retryably. */
  private async sinkOutcomes(sink: Sink, writes: PendingWrite[]): Promise<Map<string, WriteOutcome>> {
    const outcomes = new Map<string, WriteOutcome>();
    try {
      for (const o of await sink.writeBatch(writes.map((w) => w.write))) outcomes.set(o.studyUid, o);
    } catch (err) {
      this.ctx.log.warn({ sink: sink.name, studies: writes.length, err: describeError(err) }, 'sink batch failed');
      const unavailable = isSinkOutage(err);
      for (const w of writes)
        outcomes.set(w.write.studyUid, {
          studyUid: w.write.studyUid,
          ok: false,
          error: describeError(err),
          retryable: true,
          ...(unavailable && { unavailable }),
        });
    }
    return outcomes;
  }

  /**
   * `seen` false: the study was looked up and not found, so this is no sighting of it on the PACS.
   * `reason`: a code kept with the study's state (`truncated-by-pacs`), shown by status and metrics.
   */
  private async recordFailures(
    candidates: Candidate[],
    error: string,
    countAttempt: boolean,
    seen = true,
    reason?: string,
  ): Promise<void> {
    const { maxAttempts, backoffBaseSeconds, backoffMaxSeconds } = this.ctx.settings;
    const at = this.ctx.now();
    const failures = candidates.map((c) => ({
      studyUid: c.uid,
      studyDate: c.studyDate,
      fingerprint: c.fingerprint || null,
      error: scrubPatientData(error, c.dataset),
      countAttempt,
      maxAttempts,
      retryDelaySeconds: (n: number) => retryDelaySeconds(n, backoffBaseSeconds, backoffMaxSeconds),
      at,
      seenAt: c.seenAt,
      seen,
      ...(reason ? { reason } : {}),
    }));
    const states = await this.ctx.store.studies.recordFailures(this.sourceId, failures);
    for (const [i, c] of candidates.entries()) {
      const state = states[i];
      this.counts.failed++;
      if (state.dead && c.state?.status !== 'dead') this.counts.dead++;
      this.ctx.log.warn(
        {
          studyUid: c.uid,
          attempts: state.attempts,
          dead: state.dead,
          nextRetryAt: state.nextRetryAt,
          error: failures[i].error,
        },
        state.dead ? 'study dead-lettered' : 'study failed; will retry',
      );
    }
  }
}

/** A study mapped by this run: its own mapping (its holding) and patient facts. */
interface MappedStudy {
  candidate: Candidate;
  result: Extract<MapResult, { ok: true }>;
  patient?: PatientFacts;
}

/** A study on its way to the sinks: what this source mapped, and what is written (combined with other holders). */
interface PendingWrite {
  mapped: MappedStudy;
  write: StudyWrite;
}

function holdingOf(m: MappedStudy): { studyUid: string; imagingStudy: ImagingStudy; patient?: PatientFacts } {
  return {
    studyUid: m.candidate.uid,
    imagingStudy: m.result.imagingStudy,
    ...(m.patient ? { patient: m.patient } : {}),
  };
}

/** Work started ahead of its use: a rejection surfaces where it is awaited, never as an unhandled one. */
function prefetched<T>(work: Promise<T>): Promise<T> {
  work.catch(() => undefined);
  return work;
}

export function studyDateOf(ds: DicomDataset): string | null {
  const d = valueOf(readDate(ds, Tag.StudyDate));
  return d ? formatDa(d) : null;
}
