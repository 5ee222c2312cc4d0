/**
 * The PacsSource implementations the contract tests (pacsSourceContract.test.ts) run against, each loaded with
 * the same synthetic studies: the in-memory double (test/harness/memoryPacs.ts) and the real DicomwebSource
 * against a real Orthanc. What one answers, the other must too, so the sync tests on the double stay true.
 */
import { sourceSchema } from '../../../src/config';
import { createPacsSource, type PacsSource } from '../../../src/dicomweb';
import { loadStudies, type SyntheticStudy } from '../../fixtures/synthetic';
import { MemoryPacs } from '../../harness/memoryPacs';
import { orthancInstalled, startOrthanc, type OrthancServer } from '../../harness/orthanc';

export interface SourceUnderTest {
  name: 'memory' | 'orthanc';
  /** Starts what the source needs, loads the studies, and returns the source. */
  setUp(studies: readonly SyntheticStudy[]): Promise<PacsSource>;
  tearDown(): Promise<void>;
}

export function memorySource(): SourceUnderTest {
  return {
    name: 'memory',
    async setUp(studies) {
      return new MemoryPacs(studies, { id: 'contract' });
    },
    async tearDown() {},
  };
}

export function orthancSource(): SourceUnderTest {
  let orthanc: OrthancServer | undefined;
  return {
    name: 'orthanc',
    async setUp(studies) {
      orthanc = await startOrthanc();
      // One at a time: studies sharing a Study UID and Patient ID become one Orthanc study whose study-level
      // attributes come from the first file received, which the double takes from the first study put.
      await loadStudies(orthanc, studies, 1);
      return createPacsSource(
        sourceSchema.parse({
          id: 'contract',
          qidoBase: orthanc.dicomWebBase,
          defaultTimezone: 'Asia/Taipei',
          retries: 0,
          // Small pages, so the real source pages and batches here as it does against a large PACS.
          pageSize: 7,
          detailPageSize: 9,
          detailBatchSize: 4,
        }),
      );
    },
    async tearDown() {
      await orthanc?.stop();
    },
  };
}

/** Both sources, or the double alone (with a note saying why) when Orthanc is not installed. */
export function pacsSources(): SourceUnderTest[] {
  if (!orthancInstalled()) {
    console.warn('PacsSource contract against Orthanc skipped: Orthanc or its DICOMweb plugin is not installed');
    return [memorySource()];
  }
  return [memorySource(), orthancSource()];
}
