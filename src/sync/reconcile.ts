/**
 * What happens to studies that vanished from the PACS, as the sweep (src/sync/sweep.ts) finds them: the
 * configured deletion action (ignore, entered-in-error, delete), each sink touching only resources the
 * bridge created. The listing that decides which studies vanished is the sweep's. Too many at once are
 * held for a person instead (`reconcile.maxRemovals`, heldRemovals).
 */
import type { Logger } from 'pino';
import type { Sink } from '../sinks';
import type { HeldRemovals, StateStore } from '../state';
import type { DeletionAction, MaxRemovals } from './config';
import { describeError } from './errors';
import { withdrawStudy, type StudyHoldings } from './holdings';

/**
 * The most removals one sweep makes without a person: `count`, and no more than `share` of the source's
 * studies. (The small epsilon keeps 0.29 × 100 from flooring to 28.)
 */
export function removalLimit(max: MaxRemovals, studies: number): number {
  return Math.min(max.count, Math.floor(max.share * studies + 1e-9));
}

/**
 * Whether `removals` of a source's `studies` are held: when they exceed the limit, unless an operator
 * confirmed a hold of at least as many (`confirmed`: its count). A confirmation covers what the person saw:
 * more vanished since then are held again, with the new numbers. Undefined: go ahead.
 */
export function heldRemovals(o: {
  removals: number;
  studies: number;
  max: MaxRemovals;
  confirmed?: number;
}): HeldRemovals | undefined {
  const limit = removalLimit(o.max, o.studies);
  if (o.removals <= limit || o.removals <= (o.confirmed ?? 0)) return undefined;
  return { removals: o.removals, of: o.studies, limit };
}

/** The hold in words, for logs, `status` and /status: the numbers only, never a study. */
export function describeHold(h: HeldRemovals & { confirmedAt?: string | null }): string {
  const what = `removals held: the last sweep would remove ${h.removals} of ${h.of} studies (more than the ${h.limit} reconcile.maxRemovals allows) and removed none`;
  return h.confirmedAt
    ? `${what}; confirmed at ${h.confirmedAt}, the next sweep applies them`
    : `${what}; apply with \`sync --once --sweep --confirm-removals\`, or they lapse once the studies are back`;
}

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
