/**
 * What happens to studies that vanished from the PACS, as the sweep (src/sync/sweep.ts) finds them: the
 * configured deletion action (ignore, entered-in-error, delete), each sink touching only resources the
 * bridge created. The listing that decides which studies vanished is the sweep's.
 */
import type { Logger } from 'pino';
import type { Sink } from '../sinks';
import type { StateStore } from '../state';
import type { DeletionAction } from './config';
import { describeError } from './errors';

export interface ReconcileCounts {
  vanished: number;
  removed: number;
  failed: number;
}

/** Applies the deletion action to each vanished study; a failure is logged and retried by the next sweep. */
export async function removeVanished(ctx: {
  store: StateStore;
  sinks: Sink[];
  sourceId: string;
  action: DeletionAction;
  vanished: { studyUid: string }[];
  log: Logger;
  stopRequested: () => boolean;
}): Promise<ReconcileCounts & { stopped: boolean }> {
  const counts: ReconcileCounts = { vanished: ctx.vanished.length, removed: 0, failed: 0 };
  for (const study of ctx.vanished) {
    if (ctx.stopRequested()) return { ...counts, stopped: true };
    if (ctx.action === 'ignore') {
      ctx.log.info({ studyUid: study.studyUid }, 'study vanished from the PACS (deletion: ignore)');
      continue;
    }
    try {
      for (const sink of ctx.sinks) await sink.removeStudy(ctx.sourceId, study.studyUid, ctx.action);
      if (ctx.action === 'delete') await ctx.store.studies.forget(ctx.sourceId, study.studyUid);
      else
        await ctx.store.studies.markRemoved(
          ctx.sourceId,
          study.studyUid,
          'vanished from the PACS; marked entered-in-error',
        );
      counts.removed++;
      ctx.log.info({ studyUid: study.studyUid, action: ctx.action }, 'vanished study removed');
    } catch (err) {
      counts.failed++;
      ctx.log.warn(
        { studyUid: study.studyUid, action: ctx.action, err: describeError(err) },
        'removing a vanished study failed; the next sweep tries again',
      );
    }
  }
  return { ...counts, stopped: false };
}
