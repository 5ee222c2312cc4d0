/** Shared set-up for the sync integration tests: a source config pointing through the recording proxy. */
import type { ImagingStudy } from 'fhir/r4';
import { sourceSchema, type SourceConfig, type SourceInput } from '../../../src/config';
import { imagingStudyId } from '../../../src/mapping';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { addDays, todayIn } from '../../../src/time';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { loadStudies, type SyntheticStudy } from '../../fixtures/synthetic';

export const SOURCE_ID = 'orthanc';
export const TZ = 'Asia/Taipei';

export function sourceConfig(qidoBase: string, over: Partial<SourceInput> = {}): SourceConfig {
  return sourceSchema.parse({ id: SOURCE_ID, qidoBase, defaultTimezone: TZ, retries: 0, timeoutMs: 10000, ...over });
}

/** A StudyDate `days` before today in the PACS's zone. */
export function daysAgo(days: number): string {
  return addDays(todayIn(TZ, new Date()), -days);
}

export async function storedStudy(store: SqliteStateStore, studyUid: string): Promise<ImagingStudy | undefined> {
  return await store.resources.get<ImagingStudy>('ImagingStudy', imagingStudyId(studyUid));
}

export function instancesOf(study: SyntheticStudy): number {
  return study.series.reduce((n, s) => n + s.instances.length, 0);
}

/** Deletes a study from Orthanc by its StudyInstanceUID. */
export async function deleteFromOrthanc(orthanc: OrthancServer, studyUid: string): Promise<void> {
  const found = (await orthanc.rest.post('/tools/lookup', studyUid)).data as { ID: string; Type: string }[];
  const study = found.find((f) => f.Type === 'Study');
  if (!study) throw new Error(`study ${studyUid} not in Orthanc`);
  await orthanc.rest.delete(`/studies/${study.ID}`);
}

/**
 * For a test file: one Orthanc holding `studies` and an in-memory store, started before its tests and
 * stopped after them. Read them through the returned object once the tests run.
 */
export function orthancWithStore(studies: SyntheticStudy[]): { orthanc: OrthancServer; store: SqliteStateStore } {
  const parts = {} as { orthanc: OrthancServer; store: SqliteStateStore };
  beforeAll(async () => {
    parts.orthanc = await startOrthanc();
    await loadStudies(parts.orthanc, studies);
    parts.store = openSqliteStore(':memory:');
  }, 60000);
  afterAll(async () => {
    parts.store?.close();
    await parts.orthanc?.stop();
  });
  return parts;
}
