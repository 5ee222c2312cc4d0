/**
 * The embedded default sink: synced resources go into the local store, so the bridge works with no
 * FHIR server. Ids are the mapper's deterministic ids, so a write repeated after a crash updates the
 * same resource instead of creating a second one.
 */
import { createHash } from 'node:crypto';
import type { Endpoint, ImagingStudy } from 'fhir/r4';
import type { Sink, StudyWrite, WriteOutcome } from './sink';
import type { Store } from './store';

export const EMBEDDED_SINK_NAME = 'embedded';

/** Hash of a resource without meta: for the Endpoint, which carries no mapper hash of its own. */
function resourceHash(resource: Endpoint): string {
  const { meta: _meta, ...rest } = resource;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

export function createEmbeddedSink(store: Store): Sink {
  return {
    name: EMBEDDED_SINK_NAME,

    async writeBatch(writes: StudyWrite[]): Promise<WriteOutcome[]> {
      // One transaction for the batch: either all of its resources are stored or none.
      return store.transaction(() => writes.map((w) => writeOne(store, w)));
    },

    async removeStudy(sourceId, studyUid, action) {
      const meta = store.studyResource(sourceId, studyUid);
      if (!meta || !meta.createdByBridge) return;
      if (action === 'delete') {
        store.deleteResource('ImagingStudy', meta.id);
        return;
      }
      const current = store.getResource<ImagingStudy>('ImagingStudy', meta.id)!;
      if (current.status === 'entered-in-error') return;
      const marked: ImagingStudy & { id: string } = { ...current, id: meta.id, status: 'entered-in-error' };
      store.putResource(marked, { sourceId, studyUid, contentHash: `entered-in-error:${meta.contentHash}` });
    },
  };
}

function writeOne(store: Store, w: StudyWrite): WriteOutcome {
  const id = w.imagingStudy.id;
  if (!id) return { studyUid: w.studyUid, ok: false, error: 'ImagingStudy has no id', retryable: false };
  if (w.endpoint.id) {
    store.putResource(w.endpoint as Endpoint & { id: string }, {
      sourceId: w.sourceId,
      contentHash: resourceHash(w.endpoint),
    });
  }
  const put = store.putResource(w.imagingStudy as ImagingStudy & { id: string }, {
    sourceId: w.sourceId,
    studyUid: w.studyUid,
    contentHash: w.contentHash,
  });
  return { studyUid: w.studyUid, ok: true, resourceId: id, versionId: put.versionId, unchanged: put.unchanged };
}
