/**
 * The sync subcommands: `sync` (scheduled, or `--once`), `backfill --from --to`, `status` and `replay`.
 * Each reads configuration through loadConfig(), opens the embedded store, and leaves the PACS alone
 * when it does not need it (status, replay).
 */
import { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { loadConfig, type BridgeConfig } from '../config';
import { defaultPatientSystem, usesBuiltInPatientSystem } from '../mapping';
import { createLogger, type Logger } from '../log';
import type { SourceCounts, StateStore } from '../state';
import {
  createSyncService,
  sourceCoverage,
  syncSettingsFor,
  type Coverage,
  type BackfillProgress,
  type RunSummary,
  type SyncService,
} from '../sync';
import { daysBetween, todayIn } from '../time';
import { formatDuration, formatInstant } from '../api';
import { EXIT, exitCodeForRun, UsageError, worstExit, type ExitCode } from './exitCodes';
import { sourceVerdict, verdictLine, type Verdict } from './verdict';
import {
  buildSinks,
  checkRange,
  dateArgument,
  loggerFor,
  openConfiguredStore,
  prepareValidation,
  builtInPatientSystemNote,
  selectSources,
  warnBuiltInPatientSystem,
} from './runtime';

interface Context {
  config: BridgeConfig;
  store: StateStore;
  logger: Logger;
}

async function openContext(logger?: Logger): Promise<Context> {
  const config = loadConfig();
  return { config, store: await openConfiguredStore(config), logger: logger ?? loggerFor(config) };
}

function buildService(ctx: Context): SyncService {
  warnBuiltInPatientSystem(ctx.config, ctx.logger);
  const { sinks } = buildSinks(ctx.config, ctx.store, ctx.logger);
  return createSyncService({
    config: { sources: ctx.config.sources, sync: ctx.config.sync },
    store: ctx.store,
    sinks,
    logger: ctx.logger,
    validateResources: prepareValidation(ctx.config),
  });
}

interface Shutdown {
  /** The signal that asked the command to stop, if one came. */
  received(): NodeJS.Signals | undefined;
  release(): void;
}

/** SIGTERM/SIGINT: finish the batch in hand, record it, close the store. A second signal ends the process. */
function onShutdown(service: SyncService, logger: Logger): Shutdown {
  let received: NodeJS.Signals | undefined;
  const handler = (signal: NodeJS.Signals) => {
    received = signal;
    logger.info({ signal }, 'stopping: finishing the batch in hand');
    void service.stop();
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
  return {
    received: () => received,
    release: () => {
      process.off('SIGTERM', handler);
      process.off('SIGINT', handler);
    },
  };
}

/** Sets the exit status of a command that ran these runs; an interrupted one says how to resume. */
function finish(codes: ExitCode[], signal: NodeJS.Signals | undefined): void {
  const code = worstExit(codes);
  if (code === EXIT.interrupted)
    process.stderr.write(
      `pacs-fhir-bridge: interrupted${signal ? ` by ${signal}` : ''}; the studies in hand were saved. ` +
        'Run the same command again to resume where it stopped.\n',
    );
  process.exitCode = code;
}

function summaryLine(s: RunSummary, json = false): string {
  if (json) return `${JSON.stringify(s)}\n`;
  const counts = Object.entries(s.counts)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return `${s.sourceId}: ${s.kind} ${s.status}${s.error ? ` (${s.error})` : ''} ${counts}\n`;
}

interface SyncOptions {
  once?: boolean;
  source?: string;
  sweep?: boolean;
  reconcile?: boolean;
  json?: boolean;
  confirmRemovals?: boolean;
}

/** Records the operator's confirmation of the held removals, for the sweep that follows to apply them. */
async function confirmHeldRemovals(store: StateStore, sourceId: string): Promise<void> {
  const held = (await store.sweeps.confirmHeld(sourceId))?.held;
  process.stderr.write(
    held
      ? `${sourceId}: confirmed the held removals (${held.removals} of ${held.of} studies); the sweep removes those still missing\n`
      : `${sourceId}: no removals are held; the sweep removes as many as reconcile.maxRemovals allows\n`,
  );
}

export function syncCommand(): Command {
  return new Command('sync')
    .description("Sync studies from the PACS sources: on each source's cron schedule, or once with --once")
    .option('--once', 'run one poll of each source and exit')
    .option('--source <id>', 'only this source')
    .option(
      '--sweep',
      'with --once: also run (or resume) the full-range sweep: every StudyDate, the undated studies, deletions',
    )
    .option('--reconcile', 'with --once: the same as --sweep (the reconcile is part of the sweep)')
    .option('--json', 'with --once: print each run summary as one line of JSON')
    .option(
      '--confirm-removals',
      'with --once --sweep: apply the removals the last sweep held (more than reconcile.maxRemovals; a held sweep exits 3)',
    )
    .action(async (opts: SyncOptions) => {
      if (opts.confirmRemovals && !(opts.once && (opts.sweep || opts.reconcile)))
        throw new UsageError('--confirm-removals confirms what a sweep applies: use it with --once --sweep');
      const ctx = await openContext();
      const service = buildService(ctx);
      const sources = selectSources(ctx.config, opts.source);
      const shutdown = onShutdown(service, ctx.logger);
      try {
        if (!opts.once) {
          // Scheduled: runs until stopped, so a signal is the normal end (exit 0, like serve).
          service.start();
          await new Promise<void>((resolve) => {
            const done = () => resolve();
            process.once('SIGTERM', done);
            process.once('SIGINT', done);
          });
          await service.stop();
          return;
        }
        const codes: ExitCode[] = [];
        for (const id of sources) {
          if (shutdown.received()) {
            codes.push(EXIT.interrupted);
            break;
          }
          if (opts.confirmRemovals) await confirmHeldRemovals(ctx.store, id);
          const summaries = [await service.runOnce(id)];
          if ((opts.sweep || opts.reconcile) && !shutdown.received()) summaries.push(await service.sweep(id));
          for (const s of summaries) {
            process.stdout.write(summaryLine(s, opts.json));
            codes.push(exitCodeForRun(s.status));
          }
        }
        finish(codes, shutdown.received());
      } finally {
        shutdown.release();
        await ctx.store.close();
      }
    });
}

export function backfillCommand(): Command {
  return new Command('backfill')
    .description(
      'Sync every study with a StudyDate in a range; resumes where an interrupted identical backfill stopped',
    )
    .requiredOption('--from <date>', 'first StudyDate (YYYY-MM-DD or YYYYMMDD)', dateArgument)
    .requiredOption('--to <date>', 'last StudyDate (YYYY-MM-DD or YYYYMMDD)', dateArgument)
    .option('--source <id>', 'only this source')
    .option('--no-progress', 'plain log lines even on a terminal')
    .option('--json', 'print each run summary as one line of JSON')
    .action(async (opts: { from: string; to: string; source?: string; progress: boolean; json?: boolean }) => {
      checkRange(opts.from, opts.to);
      const tty = opts.progress && !!process.stderr.isTTY;
      // With a progress bar on the terminal, only warnings are logged (to stderr) so they do not tear the bar.
      const ctx = await openContext(
        tty ? createLogger({ level: 'warn', pretty: false, destination: process.stderr }) : undefined,
      );
      const service = buildService(ctx);
      const sources = selectSources(ctx.config, opts.source);
      const shutdown = onShutdown(service, ctx.logger);
      const codes: ExitCode[] = [];
      try {
        for (const id of sources) {
          if (shutdown.received()) {
            codes.push(EXIT.interrupted);
            break;
          }
          const progress = backfillProgress(id, tty, ctx.logger);
          const summary = await service.backfill(id, opts.from, opts.to, progress.report);
          progress.stop();
          process.stdout.write(summaryLine(summary, opts.json));
          codes.push(exitCodeForRun(summary.status));
        }
        finish(codes, shutdown.received());
      } finally {
        shutdown.release();
        await ctx.store.close();
      }
    });
}

/** A backfill's progress: a bar on a terminal, otherwise a log line each time a window is done. */
function backfillProgress(id: string, tty: boolean, logger: Logger) {
  const started = Date.now();
  const rate = (done: number) => (done / Math.max(0.001, (Date.now() - started) / 1000)).toFixed(1);
  const bar = tty
    ? new SingleBar(
        {
          format: `${id} {bar} {percentage}% | {value}/{total} windows | {studies} studies | {rate} studies/s | ETA {eta_formatted}`,
          etaBuffer: 20,
          hideCursor: true,
        },
        Presets.shades_classic,
      )
    : undefined;
  let lastWindows = -1;
  const report = (p: BackfillProgress) => {
    if (bar) {
      if (lastWindows < 0) bar.start(p.windowsTotal, p.windowsDone, { studies: 0, rate: '0.0' });
      bar.update(p.windowsDone, { studies: p.studiesDone, rate: rate(p.studiesDone) });
    } else if (p.windowsDone !== lastWindows) {
      const { runId, windowsDone, windowsTotal, studiesDone } = p;
      const studiesPerSecond = Number(rate(studiesDone));
      logger.info({ source: id, runId, windowsDone, windowsTotal, studiesDone, studiesPerSecond }, 'backfill progress');
    }
    lastWindows = p.windowsDone;
  };
  return { report, stop: () => bar?.stop() };
}

export interface SourceStatus {
  sourceId: string;
  checkpoint: string | null;
  /** Days between the poll checkpoint and today in the source's time zone. */
  lagDays: number | null;
  lastRun: RunSummaryLike | null;
  lastSuccessfulPoll: string | null;
  counts: SourceCounts;
  failing: { studyUid: string; attempts: number; nextRetryAt: string | null; lastError: string | null }[];
  dead: { studyUid: string; attempts: number; lastError: string | null }[];
  /** Not written until the PACS is fixed and the study replayed; `detail` never names the patients. */
  quarantined: { studyUid: string; reason: string | null; detail: string | null }[];
  /** The last complete sweep against the store, pending studies, freshness, and the verdict. */
  coverage: Coverage;
  /** The identifier system of Patient IDs without an issuer, and whether it is the bridge's built-in one. */
  patientSystem: { system: string; builtIn: boolean } | null;
}

type RunSummaryLike = {
  kind: string;
  status: string;
  startedAt: string;
  endedAt: string | null;
  counts: Record<string, number | undefined>;
  error: string | null;
};

/** What `status` shows; also usable by a status page. */
export async function sourceStatus(
  store: StateStore,
  config: BridgeConfig,
  sourceId: string,
  now = new Date(),
): Promise<SourceStatus> {
  const cfg = config.sources.find((s) => s.id === sourceId);
  const checkpoint = (await store.checkpoints.get(sourceId, 'poll')) ?? null;
  const [runs, polls, counts, failing, dead, quarantined, coverage] = await Promise.all([
    store.runs.listRuns(sourceId, 50),
    // Polls of their own: feed runs, every few seconds while studies arrive, would crowd them out of `runs`.
    store.runs.listRuns(sourceId, 50, 'poll'),
    store.studies.counts(sourceId),
    store.studies.list(sourceId, 'failing'),
    store.studies.list(sourceId, 'dead'),
    store.studies.list(sourceId, 'quarantined'),
    sourceCoverage(store, sourceId, now, syncSettingsFor(config.sync, sourceId).sweep),
  ]);
  const last = runs[0];
  const ok = polls.find((r) => r.status === 'ok' || r.status === 'partial');
  return {
    sourceId,
    checkpoint,
    lagDays: checkpoint && cfg ? daysBetween(checkpoint, todayIn(cfg.defaultTimezone, now)) : null,
    lastRun: last
      ? {
          kind: last.kind,
          status: last.status,
          startedAt: last.startedAt,
          endedAt: last.endedAt,
          counts: last.counts,
          error: last.error,
        }
      : null,
    lastSuccessfulPoll: ok?.endedAt ?? null,
    counts,
    failing: failing.map((s) => ({
      studyUid: s.studyUid,
      attempts: s.attempts,
      nextRetryAt: s.nextRetryAt,
      lastError: s.lastError,
    })),
    dead: dead.map((s) => ({ studyUid: s.studyUid, attempts: s.attempts, lastError: s.lastError })),
    quarantined: quarantined.map((s) => ({ studyUid: s.studyUid, reason: s.reason, detail: s.lastError })),
    coverage,
    patientSystem: cfg ? { system: defaultPatientSystem(cfg), builtIn: usesBuiltInPatientSystem(cfg) } : null,
  };
}

/** The coverage lines of `status`: the proof that the PACS and the store agree, or why not. */
export function coverageLines(c: Coverage): string {
  const s = c.lastSweep;
  const sweep = s
    ? `last complete sweep ${formatInstant(s.completedAt)} (${formatDuration(s.ageSeconds)} ago): PACS reported ${s.listed}, synced ${s.synced} (${(s.coverage * 100).toFixed(1)} %), failing ${s.failing}, dead ${s.dead}, vanished ${s.vanished}`
    : 'never swept: no full-range sweep has completed';
  const open = c.sweepInProgress
    ? `\n  sweep in progress since ${formatInstant(c.sweepInProgress.startedAt)}: through StudyDate ${c.sweepInProgress.throughDate ?? '–'}, ${c.sweepInProgress.listed} listed`
    : '';
  const p = c.pending;
  const pending = `pending ${p.failing} failing, ${p.dead} dead${p.oldestStudyUid ? `; oldest ${p.oldestStudyUid} waiting ${formatDuration(p.oldestAgeSeconds ?? undefined)}` : ''}`;
  const f = c.freshness;
  const freshness = f.samples
    ? `freshness (24 h, ${f.samples} written): p50 ${formatDuration(f.p50 ?? undefined)}, p95 ${formatDuration(f.p95 ?? undefined)}, max ${formatDuration(f.max ?? undefined)}`
    : 'freshness (24 h): nothing written';
  const verdict = c.health === 'ok' ? 'coverage: ok' : `coverage: ${c.health.toUpperCase()}: ${c.problems.join('; ')}`;
  return `  ${verdict}\n  ${sweep}${open}\n  ${pending}\n  ${freshness}\n`;
}

export function statusCommand(): Command {
  return new Command('status')
    .description(
      'Per source: verdict, coverage, last run, lag, counts, failing, dead-lettered and quarantined studies; ' +
        `exits ${EXIT.unhealthy} when a source is unhealthy`,
    )
    .option('--source <id>', 'only this source')
    .option('--json', 'print the statuses as one line of JSON (an array, one entry per source, each with its verdict)')
    .action(async (opts: { source?: string; json?: boolean }) => {
      const ctx = await openContext(createLogger({ level: 'warn', destination: process.stderr }));
      try {
        const ids = selectSources(ctx.config, opts.source);
        const statuses = await Promise.all(
          ids.map(async (id) => {
            const status = await sourceStatus(ctx.store, ctx.config, id);
            return { ...status, verdict: sourceVerdict(status) };
          }),
        );
        const note = builtInPatientSystemNote({ sources: ctx.config.sources.filter((c) => ids.includes(c.id)) });
        if (opts.json) process.stdout.write(`${JSON.stringify(statuses)}\n`);
        else process.stdout.write((note ? `note: ${note}\n` : '') + statuses.map(statusText).join(''));
        // For monitoring: any unhealthy source makes the command fail with its own code (README, --help).
        process.exitCode = statuses.every((s) => s.verdict.healthy) ? EXIT.ok : EXIT.unhealthy;
      } finally {
        await ctx.store.close();
      }
    });
}

/** One source's block of `status` text. */
function statusText(s: SourceStatus & { verdict: Verdict }): string {
  const c = s.counts;
  const run = s.lastRun
    ? `${s.lastRun.kind} ${s.lastRun.status} at ${s.lastRun.endedAt ?? s.lastRun.startedAt}${s.lastRun.error ? ` (${s.lastRun.error})` : ''}`
    : 'never';
  const lines = [
    `${s.sourceId}\n${verdictLine(s.verdict)}  last run: ${run}\n`,
    `  checkpoint: ${s.checkpoint ?? 'none'}${s.lagDays !== null ? ` (lag ${s.lagDays} d)` : ''}; last successful poll: ${s.lastSuccessfulPoll ?? 'never'}\n`,
    `  studies: ${c.studies} (synced ${c.synced}, failing ${c.failing}, dead ${c.dead}, removed ${c.removed}, quarantined ${c.quarantined}); ImagingStudy resources: ${c.resources}\n`,
    coverageLines(s.coverage),
    ...s.failing.map(
      (f) =>
        `  failing ${f.studyUid} attempts=${f.attempts} next=${f.nextRetryAt ?? 'next run'}: ${f.lastError ?? ''}\n`,
    ),
    ...s.dead.map((d) => `  dead    ${d.studyUid} attempts=${d.attempts}: ${d.lastError ?? ''}\n`),
    ...s.quarantined.map((q) => `  quarantined ${q.studyUid} (${q.reason ?? ''}): ${q.detail ?? ''}\n`),
  ];
  return lines.join('');
}

export function replayCommand(): Command {
  return new Command('replay')
    .description('Re-queue dead-lettered and quarantined studies: they are retried (and checked again) on the next run')
    .option('--source <id>', 'only this source')
    .option('--study <uid>', 'only this study')
    .action(async (opts: { source?: string; study?: string }) => {
      const ctx = await openContext(createLogger({ level: 'warn', destination: process.stderr }));
      try {
        let total = 0;
        for (const id of selectSources(ctx.config, opts.source)) {
          const n = await ctx.store.studies.replay(id, opts.study);
          total += n;
          process.stdout.write(`${id}: ${n} dead letter${n === 1 ? '' : 's'} re-queued\n`);
        }
        if (opts.study && total === 0) {
          process.stderr.write(`no dead letter with StudyInstanceUID ${opts.study} (nor a quarantined study)\n`);
          process.exitCode = 1;
        }
      } finally {
        await ctx.store.close();
      }
    });
}
