/**
 * WADO-RS metadata of a DicomwebSource: a study's full headers on demand, and one instance's header per
 * study for enrichment (src/mapping fills from it what the QIDO-RS rows lack).
 */
import { readString, Tag, valueOf, type DicomDataset } from '../dicom';
import type { QueryContext } from './queryContext';
import { PacsError, type StudyDetails } from './types';

export function studyMetadata(ctx: QueryContext, studyUid: string): Promise<DicomDataset[]> {
  return ctx.transport.metadata(studyUid);
}

/**
 * One instance's WADO-RS metadata for enrichment: an instance already listed, else the first one a QIDO
 * search with limit 1 finds. A PACS that refuses it (HTTP error, bad body) costs the study its enrichment only.
 */
export async function addMetadata(
  ctx: QueryContext,
  studyUid: string,
  details: StudyDetails,
  keys: Array<[string, string]>,
): Promise<void> {
  const uidsOf = (ds: DicomDataset | undefined) => {
    const series = ds && valueOf(readString(ds, Tag.SeriesInstanceUID));
    const instance = ds && valueOf(readString(ds, Tag.SOPInstanceUID));
    return series && instance ? { study: studyUid, series, instance } : undefined;
  };
  try {
    let uids = details.instances.map(uidsOf).find((u) => u !== undefined);
    if (!uids) {
      const include: [string, string] = ['includefield', `${Tag.SeriesInstanceUID},${Tag.SOPInstanceUID}`];
      const some = await ctx.transport.qido({
        level: 'instances',
        studyUid,
        params: [...keys, include, ['limit', '1']],
      });
      uids = uidsOf(some.datasets[0]);
    }
    if (!uids) return;
    details.metadata = (await ctx.transport.instanceMetadata(uids))[0];
  } catch (e) {
    if (!(e instanceof PacsError) || (e.kind !== 'http' && e.kind !== 'bad-response')) throw e;
    ctx.logger?.warn(
      { source: ctx.id, studyUid, status: e.status },
      'WADO-RS metadata for enrichment failed; the study is mapped from QIDO-RS alone',
    );
  }
}
