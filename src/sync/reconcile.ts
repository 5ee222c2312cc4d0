/**
 * The full reconcile: lists every study the PACS still has (study level only) and finds the ones the
 * store knows that vanished. What happens to them is configured: ignore, entered-in-error, or delete,
 * and each sink touches only resources the bridge created.
 */
import type { Logger } from 'pino';
import type { PacsSource } from '../dicomweb/types';
import type { Sink } from '../sinks/sink';
import type { Store } from '../sinks/store';
import type { SyncSettings } from './config';
import { planWindows } from './dates';
import { describeError, SourceUnavailableError } from './errors';
import { studyUidOf } from './run';

/** Days per listing window: large, since the source layer pages and splits on truncation anyway. */
const RECONCILE_WINDOW_DAYS = 31;

export interface ReconcileCounts {
  listed: number;
  vanished: number;
  removed: number;
  failed: number;
}

export async function reconcileSource(ctx: {
  store: Store;
  sinks: Sink[];
  source: PacsSource;
  sourceId: string;
  settings: SyncSettings;
  today: string;
  log: Logger;
  stopRequested: () => boolean;
}): Promise<ReconcileCounts & { stopped: boolean }> {
  const counts: ReconcileCounts = { listed: 0, vanished: 0, removed: 0, failed: 0 };
  const known = ctx.store.presentStudies(ctx.sourceId);
  const earliest = ctx.store.earliestStudyDate(ctx.sourceId);
  const onPacs = new Set<string>();
  try {
    if (earliest && earliest <= ctx.today) {
      for (const window of planWindows(earliest, ctx.today, RECONCILE_WINDOW_DAYS)) {
        if (ctx.stopRequested()) return { ...counts, stopped: true };
        for (const ds of await ctx.source.findStudies(window, ctx.settings.filter)) {
          const uid = studyUidOf(ds);
          if (uid) onPacs.add(uid);
        }
      }
    }
    if (ctx.settings.undatedSweep) {
      for (const ds of await ctx.source.findUndatedStudies(ctx.settings.filter)) {
        const uid = studyUidOf(ds);
        if (uid) onPacs.add(uid);
      }
    }
  } catch (err) {
    // A listing that did not finish must never be read as "those studies are gone".
    throw new SourceUnavailableError(err);
  }
  counts.listed = onPacs.size;

  // Only studies the listing could have found: dated within the listed range, or undated when swept.
  const vanished = known.filter(
    (s) => !onPacs.has(s.studyUid) && (s.studyDate ? s.studyDate <= ctx.today : ctx.settings.undatedSweep),
  );
  counts.vanished = vanished.length;
  if (vanished.length && onPacs.size === 0) {
    throw new Error(
      `the PACS listed no studies at all while the store has ${known.length}; refusing to treat them all as deleted`,
    );
  }
  const action = ctx.settings.reconcile.deletion;
  for (const study of vanished) {
    if (ctx.stopRequested()) return { ...counts, stopped: true };
    if (action === 'ignore') {
      ctx.log.info({ studyUid: study.studyUid }, 'study vanished from the PACS (deletion: ignore)');
      continue;
    }
    try {
      for (const sink of ctx.sinks) await sink.removeStudy(ctx.sourceId, study.studyUid, action);
      if (action === 'delete') ctx.store.forgetStudy(ctx.sourceId, study.studyUid);
      else ctx.store.markRemoved(ctx.sourceId, study.studyUid, 'vanished from the PACS; marked entered-in-error');
      counts.removed++;
      ctx.log.info({ studyUid: study.studyUid, action }, 'vanished study removed');
    } catch (err) {
      counts.failed++;
      ctx.log.warn(
        { studyUid: study.studyUid, action, err: describeError(err) },
        'removing a vanished study failed; will retry next reconcile',
      );
    }
  }
  return { ...counts, stopped: false };
}
