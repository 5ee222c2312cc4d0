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
import { withdrawStudy, type StudyHoldings } from './holdings';

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
  holdings: StudyHoldings;
}): Promise<ReconcileCounts & { stopped: boolean }> {
  const counts: ReconcileCounts = { vanished: ctx.vanished.length, removed: 0, failed: 0 };
  for (const study of ctx.vanished) {
    if (ctx.stopRequested()) return { ...counts, stopped: true };
    if (ctx.action === 'ignore') {
      ctx.log.info({ studyUid: study.studyUid }, 'study vanished from the PACS (deletion: ignore)');
      continue;
    }
    try {
      // A study another source still holds stays, written again without this source.
      const outcome = await withdrawStudy(ctx, study.studyUid, ctx.action);
      if (outcome !== 'removed')
        ctx.log.info({ studyUid: study.studyUid, outcome }, 'vanished study still held by another source');
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
