/**
 * The embedded default sink: synced resources go into the local store, so the bridge works with no
 * FHIR server. Ids are the mapper's deterministic ids, so a write repeated after a crash updates the
 * same resource instead of creating a second one.
 */
import { createHash } from 'node:crypto';
import type { Endpoint, ImagingStudy } from 'fhir/r4';
import { imagingStudyId } from '../mapping';
import type { Sink, StudyWrite, WriteOutcome } from './sink';
import type { ResourcePut, StateStore } from '../state';

export const EMBEDDED_SINK_NAME = 'embedded';

/** Hash of a resource without meta: for the Endpoint, which carries no mapper hash of its own. */
function resourceHash(resource: Endpoint): string {
  const { meta: _meta, ...rest } = resource;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

export function createEmbeddedSink(store: StateStore): Sink {
  const resources = store.resources;
  return {
    name: EMBEDDED_SINK_NAME,

    async writeBatch(writes: StudyWrite[]): Promise<WriteOutcome[]> {
      // One transaction for the batch: either all of its resources are stored or none.
      const puts: ResourcePut[] = [];
      const outcomes: (WriteOutcome | number)[] = writes.map((w) => {
        const id = w.imagingStudy.id;
        if (!id) return { studyUid: w.studyUid, ok: false, error: 'ImagingStudy has no id', retryable: false };
        for (const { sourceId, endpoint } of [{ sourceId: w.sourceId, endpoint: w.endpoint }, ...(w.alsoHeldBy ?? [])])
          if (endpoint.id)
            puts.push({
              resource: endpoint as Endpoint & { id: string },
              sourceId,
              contentHash: resourceHash(endpoint),
            });
        puts.push({
          resource: w.imagingStudy as ImagingStudy & { id: string },
          sourceId: w.sourceId,
          studyUid: w.studyUid,
          contentHash: w.contentHash,
        });
        return puts.length - 1;
      });
      const results = await resources.put(puts);
      return outcomes.map((o, i) => {
        if (typeof o !== 'number') return o;
        const put = results[o];
        const w = writes[i];
        return {
          studyUid: w.studyUid,
          ok: true,
          resourceId: w.imagingStudy.id!,
          versionId: put.versionId,
          unchanged: put.unchanged,
        };
      });
    },

    async removeStudy(sourceId, studyUid, action) {
      // The one this source wrote, else by the study's id whichever source wrote it last (a study several sources
      // held): the sync removes a study only once no source holds it.
      const meta =
        (await resources.studyResource(sourceId, studyUid)) ??
        (await resources.getMeta('ImagingStudy', imagingStudyId(studyUid)));
      if (!meta || !meta.createdByBridge) return;
      if (action === 'delete') {
        await resources.delete('ImagingStudy', meta.id);
        return;
      }
      const current = (await resources.get<ImagingStudy>('ImagingStudy', meta.id))!;
      if (current.status === 'entered-in-error') return;
      const marked: ImagingStudy & { id: string } = { ...current, id: meta.id, status: 'entered-in-error' };
      await resources.put([
        { resource: marked, sourceId, studyUid, contentHash: `entered-in-error:${meta.contentHash}` },
      ]);
    },
  };
}
