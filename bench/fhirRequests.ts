/**
 * FHIR-server HTTP requests per study: the sync writing into the FHIR engine the tests use (Medplum's
 * FhirRouter over HTTP), counted by that server. Once with patient references by identifier (no linking
 * requests) and once with `lookup` linking (one cached Patient search per new patient).
 */
import { sourceSchema } from '../src/config';
import { createFhirSink } from '../src/sinks/fhir';
import { fhirSinkSchema } from '../src/sinks/fhir/config';
import { openSqliteStore } from '../src/state';
import { createSyncService } from '../src/sync';
import { daysOf } from '../test/fixtures/synthetic';
import { startFhirServer } from '../test/harness/fhirServer';
import type { BenchCorpus } from './corpus';

export interface FhirRequestsMode {
  linking: 'identifier' | 'lookup';
  studies: number;
  requests: number;
  /** Requests made once per sink start (CapabilityStatement check, the Endpoint). */
  oneTime: number;
  transactions: number;
  patientSearches: number;
  /** (requests − oneTime) ÷ studies. */
  perStudy: number;
  /** requests ÷ studies, start-up included. */
  perStudyAllIn: number;
  /** 1/B plus the linking requests the mode needs: patient searches ÷ studies. */
  target: number;
}

export interface FhirRequestsResult {
  batchSize: number;
  /** Distinct patients among the studies synced. */
  patients: number;
  modes: FhirRequestsMode[];
}

export async function runFhirRequests(corpus: BenchCorpus, days = 16): Promise<FhirRequestsResult> {
  const to = daysOf(corpus.from, days).at(-1)!;
  const studies = corpus.studies.filter((s) => s.studyDate !== undefined && s.studyDate <= to);
  const patients = new Set(studies.map((s) => s.patient.id)).size;
  const batchSize = fhirSinkSchema.parse({ baseUrl: 'http://x.invalid' }).batchSize;
  const modes: FhirRequestsMode[] = [];
  for (const linking of ['identifier', 'lookup'] as const) {
    const fhir = await startFhirServer();
    const store = openSqliteStore(':memory:');
    const sink = createFhirSink({ baseUrl: fhir.baseUrl, patientLinking: { mode: linking } });
    const sync = createSyncService({
      config: { sources: [sourceSchema.parse({ id: 'bench', qidoBase: corpus.orthanc.dicomWebBase })], sync: {} },
      store,
      sinks: [sink],
    });
    try {
      const run = await sync.backfill('bench', corpus.from, to);
      if (run.status !== 'ok' || run.counts.written !== studies.length)
        throw new Error(`FHIR sync (${linking}): ${JSON.stringify(run)}`);
      const requests = fhir.fhirRequestCount();
      const stats = sink.stats();
      const { byKind } = stats.requests;
      const oneTime = byKind.metadata + byKind.endpoint;
      const patientSearches = byKind.lookup;
      modes.push({
        linking,
        studies: studies.length,
        requests,
        oneTime,
        transactions: stats.transactions,
        patientSearches,
        perStudy: (requests - oneTime) / studies.length,
        perStudyAllIn: requests / studies.length,
        target: 1 / batchSize + patientSearches / studies.length,
      });
    } finally {
      await sync.stop();
      await store.close();
      await fhir.stop();
    }
  }
  return { batchSize, patients, modes };
}
