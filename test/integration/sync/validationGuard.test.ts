/**
 * The run-time profile guard (sinks.validation): with it on, a study whose resources cannot be shown
 * valid against base R4 and TW Core is recorded as failed and nothing is written; once the profiles are
 * available, the retry validates and writes it.
 */
import path from 'node:path';
import { setProfilesDir } from '../../../src/mapping';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { createSyncService } from '../../../src/sync';
import { makeStudy } from '../../fixtures/synthetic';
import { daysAgo, orthancWithStore, SOURCE_ID, sourceConfig, storedStudy } from './common';

const study = makeStudy({ studyUid: '2.25.77101', studyDate: daysAgo(1) });
const pacs = orthancWithStore([study]);

it('refuses to write what it cannot validate, and writes it once validation passes', async () => {
  const sync = createSyncService({
    config: { sources: [sourceConfig(pacs.orthanc.dicomWebBase)], sync: { lookbackDays: 3, backoffBaseSeconds: 0 } },
    store: pacs.store,
    sinks: [createEmbeddedSink(pacs.store)],
    validateResources: true,
  });

  // No StructureDefinitions where the guard looks: it refuses rather than letting resources through.
  setProfilesDir(path.join(__dirname, 'no-such-profiles'));
  const refused = await sync.runOnce(SOURCE_ID);
  expect(refused.counts).toMatchObject({ failed: 1, written: 0 });
  expect(pacs.store.failingStudies(SOURCE_ID)[0].lastError).toMatch(/invalid-resource: .*validator unavailable/);
  expect(storedStudy(pacs.store, study.studyUid)).toBeUndefined();

  setProfilesDir(path.resolve(__dirname, '../../../../shared/fhir/twcore-0.3.2'));
  const retried = await sync.runOnce(SOURCE_ID);
  expect(retried.counts).toMatchObject({ failed: 0, written: 1 });
  expect(storedStudy(pacs.store, study.studyUid)?.meta?.profile).toEqual([
    'https://twcore.mohw.gov.tw/ig/twcore/StructureDefinition/ImagingStudy-twcore',
  ]);
});
