/**
 * The run-time profile guard (sinks.validation): with it on, a study whose resources cannot be shown
 * valid against base R4 and TW Core is recorded as failed and nothing is written; once the profiles are
 * available, the retry validates and writes it.
 */
import path from 'node:path';
import { setProfilesDir } from '../../../src/mapping';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { openStore, type Store } from '../../../src/sinks/store';
import { createSyncService } from '../../../src/sync';
import { loadStudies, makeStudy } from '../../fixtures/synthetic';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { daysAgo, SOURCE_ID, sourceConfig, storedStudy } from './common';

let orthanc: OrthancServer;
let store: Store;
const study = makeStudy({ studyUid: '2.25.77101', studyDate: daysAgo(1) });

beforeAll(async () => {
  orthanc = await startOrthanc();
  await loadStudies(orthanc, [study]);
  store = openStore(':memory:');
}, 60000);

afterAll(async () => {
  store?.close();
  await orthanc?.stop();
});

it('refuses to write what it cannot validate, and writes it once validation passes', async () => {
  const sync = createSyncService({
    config: { sources: [sourceConfig(orthanc.dicomWebBase)], sync: { lookbackDays: 3, backoffBaseSeconds: 0 } },
    store,
    sinks: [createEmbeddedSink(store)],
    validateResources: true,
  });

  // No StructureDefinitions where the guard looks: it refuses rather than letting resources through.
  setProfilesDir(path.join(__dirname, 'no-such-profiles'));
  const refused = await sync.runOnce(SOURCE_ID);
  expect(refused.counts).toMatchObject({ failed: 1, written: 0 });
  expect(store.failingStudies(SOURCE_ID)[0].lastError).toMatch(/invalid-resource: .*validator unavailable/);
  expect(storedStudy(store, study.studyUid)).toBeUndefined();

  setProfilesDir(path.resolve(__dirname, '../../../../shared/fhir/twcore-0.3.2'));
  const retried = await sync.runOnce(SOURCE_ID);
  expect(retried.counts).toMatchObject({ failed: 0, written: 1 });
  expect(storedStudy(store, study.studyUid)?.meta?.profile).toEqual(['https://twcore.mohw.gov.tw/ig/twcore/StructureDefinition/ImagingStudy-twcore']);
});
