/**
 * Two sources writing one study at the same moment (a PACS and its VNA receiving it together): each records its
 * holding after its write and checks whether the other's changed since it merged, so the later check writes the
 * study again with both. Driven on the in-memory PACS, with a sink double that starts the VNA's run in the middle
 * of the PACS's write.
 */
import type { Endpoint, ImagingStudy } from 'fhir/r4';
import { sourceSchema } from '../../../src/config';
import { imagingStudyId } from '../../../src/mapping';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { openSqliteStore } from '../../../src/state';
import { createSyncService, type RunSummary } from '../../../src/sync';
import { makeStudy } from '../../fixtures/synthetic';
import { MemoryPacs } from '../../harness/memoryPacs';
import { MemorySink } from '../../harness/memorySink';

const study = makeStudy({ studyUid: '2.25.2190', studyDate: '20240301' });

it('a study two sources write at once ends with both Endpoints, counted once by each run', async () => {
  const store = openSqliteStore(':memory:');
  const pacs = { pacs: new MemoryPacs([study], { id: 'pacs' }), vna: new MemoryPacs([study], { id: 'vna' }) };
  const sources = (['pacs', 'vna'] as const).map((id) =>
    sourceSchema.parse({
      id,
      qidoBase: `http://${id}.invalid/dicom-web`,
      // One patient identity: the fixture's issuer mapped to one system in both.
      mapping: { patient: { issuerSystems: { 'TW-HOSP-A': 'urn:oid:1.2.3' } } },
    }),
  );
  const fhir = new MemorySink('fhir');
  const sync = createSyncService({
    config: { sources, sync: { backfillFrom: '20240301' } },
    store,
    sinks: [createEmbeddedSink(store), fhir],
    sourceFactory: (cfg) => pacs[cfg.id as 'pacs' | 'vna'],
  });
  // The PACS's write has reached the embedded store and is on its way to the FHIR server when the VNA's run
  // starts and finishes: the VNA merged without the PACS's holding, which is not recorded yet.
  let vnaStarted = false;
  let vnaRun: RunSummary | undefined;
  fhir.onWrite = async (writes) => {
    if (vnaStarted || writes[0]?.sourceId !== 'pacs') return;
    vnaStarted = true;
    vnaRun = await sync.runOnce('vna');
  };
  const pacsRun = await sync.runOnce('pacs');

  expect(vnaRun).toMatchObject({ status: 'ok', counts: { written: 1 } });
  expect(pacsRun).toMatchObject({ status: 'ok', counts: { written: 1 } });
  const stored = await store.resources.get<ImagingStudy>('ImagingStudy', imagingStudyId(study.studyUid));
  const addresses = await Promise.all(
    (stored?.endpoint ?? []).map(
      async (r) => (await store.resources.get<Endpoint>('Endpoint', r.reference!.split('/')[1]!))?.address,
    ),
  );
  expect(addresses).toEqual(['http://pacs.invalid/dicom-web', 'http://vna.invalid/dicom-web']);
  // The FHIR server's last copy is the merged one too.
  expect(fhir.held.get(study.studyUid)?.write.imagingStudy.endpoint).toHaveLength(2);
  await store.close();
});
