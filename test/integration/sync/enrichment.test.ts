/**
 * WADO-RS metadata enrichment on a real Orthanc, whose QIDO-RS never returns sequences but whose metadata does:
 * off by default (procedure code and accession issuer lost); on, one instance's metadata per new or changed study
 * brings them into the stored ImagingStudy, at one extra request per study (two without instance lists), and an
 * unchanged study costs none. Every stored resource validates against R4 + ImagingStudy-twcore.
 */
import type { ImagingStudy } from 'fhir/r4';
import type { SourceInput } from '../../../src/config';
import { createLogger } from '../../../src/log';
import { isBlocking, validateImagingStudy } from '../../../src/mapping';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService } from '../../../src/sync';
import { loadStudies, makeSeries, makeStudy } from '../../fixtures/synthetic';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { startRecordingProxy, type RecordingProxy } from '../../harness/recordingProxy';
import { daysAgo, SOURCE_ID, sourceConfig, storedStudy } from './common';

let orthanc: OrthancServer;
let proxy: RecordingProxy;
const stores: SqliteStateStore[] = [];
const logger = createLogger({ level: 'silent' });

const studies = [0, 1, 2].map((i) =>
  makeStudy({
    studyDate: daysAgo(1),
    accession: `ENR-${i}`,
    accessionIssuer: 'TW-HOSP-A-RIS',
    procedureCode: { code: '24627-2', scheme: 'LN', meaning: 'Chest CT' },
    reasonCode: { code: 'R05', scheme: 'I10', meaning: 'Cough' },
    series: [makeSeries({ modality: 'CT', instances: 2 }), makeSeries({ modality: 'CT', number: 2, instances: 1 })],
  }),
);

beforeAll(async () => {
  orthanc = await startOrthanc();
  proxy = await startRecordingProxy(orthanc.dicomWebBase);
  await loadStudies(orthanc, studies);
}, 60000);

afterAll(async () => {
  for (const s of stores) s.close();
  await proxy?.stop();
  await orthanc?.stop();
});

async function sync(over: Partial<SourceInput>, store?: SqliteStateStore) {
  const s = store ?? openSqliteStore(':memory:');
  if (!store) stores.push(s);
  proxy.reset();
  const run = await createSyncService({
    config: {
      sources: [sourceConfig(proxy.via(orthanc.dicomWebBase), over)],
      sync: { lookbackDays: 3, windowDays: 3, batchSize: 10, backoffBaseSeconds: 0 },
    },
    store: s,
    sinks: [createEmbeddedSink(s)],
    logger,
  }).runOnce(SOURCE_ID);
  const stored = await Promise.all(studies.map(async (st) => (await storedStudy(s, st.studyUid))!));
  for (const r of stored) expect(validateImagingStudy(r).filter(isBlocking)).toEqual([]);
  return { run, store: s, stored, counts: proxy.counts() };
}

const acsn = (r: ImagingStudy) => r.identifier?.find((i) => i.type?.coding?.[0].code === 'ACSN');

test('off by default: Orthanc QIDO-RS alone loses the procedure code, reason codes and the accession issuer', async () => {
  const { stored, counts } = await sync({});
  for (const r of stored) {
    expect(r.procedureCode).toBeUndefined();
    expect(r.reasonCode).toBeUndefined();
    expect(acsn(r)?.assigner).toBeUndefined();
  }
  expect(counts.metadata).toBe(0);
});

test('on: one instance metadata per new study fills them in; an unchanged study costs nothing more', async () => {
  const first = await sync({ enrichment: { wadoMetadata: true } });
  for (const r of first.stored) {
    expect(r.procedureCode).toEqual([
      { coding: [{ system: 'http://loinc.org', code: '24627-2', display: 'Chest CT' }], text: 'Chest CT' },
    ]);
    expect(r.reasonCode?.[0].coding?.[0]).toEqual({
      system: 'http://hl7.org/fhir/sid/icd-10',
      code: 'R05',
      display: 'Cough',
    });
    expect(acsn(r)?.assigner).toEqual({ display: 'TW-HOSP-A-RIS' });
  }
  expect(first.counts.metadata).toBe(studies.length);
  const metadataUrls = proxy.requests.filter((r) => r.level === 'metadata').map((r) => r.url);
  for (const u of metadataUrls) expect(u).toMatch(/\/studies\/[\d.]+\/series\/[\d.]+\/instances\/[\d.]+\/metadata$/);

  const again = await sync({ enrichment: { wadoMetadata: true } }, first.store);
  expect(again.run.counts.unchanged).toBe(studies.length);
  expect(again.counts.metadata).toBe(0);
});

test('without instance lists, one instance is found with a limit-1 search first', async () => {
  const { stored, counts } = await sync({ enrichment: { wadoMetadata: true }, mapping: { includeInstances: false } });
  for (const r of stored) expect(r.procedureCode?.[0].coding?.[0].code).toBe('24627-2');
  expect(counts.metadata).toBe(studies.length);
  expect(proxy.requests.filter((r) => r.level === 'instances' && /limit=1(&|$)/.test(r.url))).toHaveLength(
    studies.length,
  );
});
