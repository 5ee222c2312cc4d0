/**
 * Study UID conflicts in the sync: a study the PACS reports under two patients (detected by
 * src/mapping/conflicts.ts) is a patient-safety event, so it is never written. It is quarantined with
 * reason `study-uid-conflict` until an operator replays it.
 */
import type { StudyState } from '../state';
import { STUDY_UID_CONFLICT } from '../mapping';
import { describeError } from './errors';
import { withdrawStudy } from './holdings';
import type { RunContext } from './types';

export { detailConflict, splitStudyConflicts, STUDY_UID_CONFLICT, type StudyConflict } from '../mapping';

/**
 * Records the quarantine. A study written before the conflict appeared is handled per the deletion
 * policy (sync.reconcile.deletion): left as written (`ignore`, the default), marked entered-in-error,
 * or deleted, in every sink. Returns whether the study was newly quarantined.
 */
export async function quarantineStudy(
  ctx: Pick<RunContext, 'store' | 'sinks' | 'sourceConfig' | 'settings' | 'log' | 'now' | 'holdings'>,
  study: { uid: string; studyDate: string | null; fingerprint: string | null; state?: StudyState },
  detail: string,
): Promise<boolean> {
  const sourceId = ctx.sourceConfig.id;
  const action = ctx.settings.reconcile.deletion;
  let note = '';
  const written = study.state?.resourceId != null && study.state.status !== 'removed';
  if (written && action !== 'ignore') {
    try {
      const outcome = await withdrawStudy({ ...ctx, sourceId }, study.uid, action);
      note =
        outcome === 'removed'
          ? `; the ImagingStudy written before was ${action === 'delete' ? 'deleted' : 'marked entered-in-error'}`
          : '; the ImagingStudy stays as the other sources holding it have it';
    } catch (err) {
      note = `; marking the ImagingStudy written before (${action}) failed: ${describeError(err)}`;
    }
  } else {
    // Never part of the study the other sources hold while quarantined here.
    await ctx.store.holdings.release(sourceId, study.uid);
    if (written) note = '; the ImagingStudy written before is left as it was (deletion policy: ignore)';
  }
  await ctx.store.studies.recordQuarantine(sourceId, study.uid, {
    studyDate: study.studyDate,
    fingerprint: study.fingerprint,
    reason: STUDY_UID_CONFLICT,
    detail: detail + note,
    at: ctx.now(),
  });
  const fresh = study.state?.status !== 'quarantined';
  ctx.log.warn(
    { studyUid: study.uid, reason: STUDY_UID_CONFLICT, detail: detail + note },
    'study quarantined: one Study Instance UID under several patients',
  );
  return fresh;
}
