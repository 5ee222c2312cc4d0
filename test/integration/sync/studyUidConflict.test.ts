/**
 * One Study UID under two patients, from real files (Debian's python3-nibabel test data) in a real Orthanc:
 * the study is quarantined with `study-uid-conflict`, never merged into one ImagingStudy; it shows in the
 * store, `status`, /status and /metrics without naming either patient; once the PACS is fixed a replay
 * writes it. A study written before the conflict appeared is marked per the deletion policy.
 */
import { Writable } from 'node:stream';
import type { Bundle, ImagingStudy } from 'fhir/r4';
import { buildStatusModel, renderStatusPage } from '../../../src/api/ops/statusPage';
import { sourceStatus } from '../../../src/cli/sync';
import { configSchema } from '../../../src/config/schema';
import { createLogger } from '../../../src/log';
import { createMetrics } from '../../../src/metrics';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService } from '../../../src/sync';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { loadStudies, makeSeries, makeStudy } from '../../fixtures/synthetic';
import {
  EMPTY_PATIENT_FILES,
  NIBABEL_STUDY_DATE,
  NIBABEL_STUDY_UID,
  PATIENT_1234_FILES,
  uploadNibabel,
} from '../../fixtures/nibabelSamples';
import { parsePrometheus, sampleValue } from '../metrics/promText';
import { matchIds, serveApi } from '../api/helpers';
import { createPacsSource } from '../../../src/dicomweb';
import { daysAgo, SOURCE_ID, sourceConfig, storedStudy } from './common';

const P = 'pacs_fhir_bridge_';
/** What must never appear in a record or a log line: the Patient ID and the name of 0.dcm. */
const PHI = /1234|dft|patient name/i;

function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), lines };
}

function syncFor(orthanc: OrthancServer, store: SqliteStateStore, deletion: 'ignore' | 'entered-in-error' = 'ignore') {
  const { logger, lines } = capturingLogger();
  const source = sourceConfig(orthanc.dicomWebBase);
  const sync = createSyncService({
    config: { sources: [source], sync: { lookbackDays: 1, reconcile: { deletion } } },
    store,
    sinks: [createEmbeddedSink(store)],
    logger,
    validateResources: true,
  });
  // A completed backfill of the same range is not run again, so each call starts one day earlier.
  let from = Number(NIBABEL_STUDY_DATE);
  const backfill = () => sync.backfill(SOURCE_ID, String(from--), NIBABEL_STUDY_DATE);
  return { sync, backfill, lines, source };
}

describe('nibabel pair uploaded together', () => {
  let orthanc: OrthancServer;
  let store: SqliteStateStore;
  beforeAll(async () => {
    orthanc = await startOrthanc();
    await uploadNibabel(orthanc, [...PATIENT_1234_FILES, ...EMPTY_PATIENT_FILES]);
    store = openSqliteStore(':memory:');
  }, 60000);
  afterAll(async () => {
    store?.close();
    await orthanc?.stop();
  });

  it('is quarantined, not merged; shown in status, /status and /metrics without patient data', async () => {
    const metrics = createMetrics().observe({ store });
    const { backfill, lines, source } = syncFor(orthanc, store);
    const run = await backfill();
    expect(run).toMatchObject({ status: 'partial', counts: { found: 1, quarantined: 1, written: 0 } });

    expect(await storedStudy(store, NIBABEL_STUDY_UID)).toBeUndefined();
    expect(await store.resources.listImagingStudies()).toEqual([]);
    const state = (await store.studies.get(SOURCE_ID, NIBABEL_STUDY_UID))!;
    expect(state).toMatchObject({ status: 'quarantined', reason: 'study-uid-conflict', resourceId: null });
    expect(state.lastError).toMatch(/^study-uid-conflict: .* under 2 patients/);
    expect(state.lastError).toContain('empty Patient ID');
    expect(state.lastError).not.toMatch(PHI);
    expect(lines.some((l) => l.includes(NIBABEL_STUDY_UID) && l.includes('study-uid-conflict'))).toBe(true);
    expect(lines.filter((l) => PHI.test(l))).toEqual([]);

    // `status`
    const config = configSchema.parse({ sources: [source] });
    const status = await sourceStatus(store, config, SOURCE_ID);
    expect(status.counts.quarantined).toBe(1);
    expect(status.quarantined).toEqual([
      { studyUid: NIBABEL_STUDY_UID, reason: 'study-uid-conflict', detail: state.lastError },
    ]);
    // /status
    const html = renderStatusPage(await buildStatusModel(store, [SOURCE_ID], new Date(), 5), 'csrf');
    expect(html).toContain('<span data-field="quarantined-count">1</span>');
    expect(html).toMatch(new RegExp(`<table class="quarantined">.*${NIBABEL_STUDY_UID.replace(/\./g, '\\.')}`));
    expect(html).not.toMatch(PHI);
    // /metrics
    const samples = parsePrometheus((await metrics.scrape()).body);
    expect(sampleValue(samples, `${P}studies`, { source: SOURCE_ID, state: 'quarantined' })).toBe(1);
    expect(sampleValue(samples, `${P}quarantined_studies`, { source: SOURCE_ID, reason: 'study-uid-conflict' })).toBe(
      1,
    );
    expect(sampleValue(samples, `${P}studies_quarantined_total`, { source: SOURCE_ID })).toBe(1);

    // The live API leaves it out too, saying why, and names neither patient.
    const api = await serveApi({
      config: { mode: 'live', cache: { enabled: false }, auth: { type: 'none' } },
      sources: [{ config: source, pacs: createPacsSource(source) }],
    });
    try {
      const found = await api.http.get<Bundle>(`/ImagingStudy?_id=${NIBABEL_STUDY_UID}`);
      expect(found.status).toBe(200);
      expect(matchIds(found.data)).toEqual([]);
      const outcome = JSON.stringify(found.data.entry?.filter((e) => e.search?.mode === 'outcome'));
      expect(outcome).toContain('study-uid-conflict');
      expect(outcome).not.toMatch(PHI);
      const read = await api.http.get(`/ImagingStudy/${NIBABEL_STUDY_UID}`);
      expect(read.status).not.toBe(200);
      expect(JSON.stringify(read.data)).toContain('study-uid-conflict');
    } finally {
      await api.close();
    }

    // Listed again: still held, nothing written, not counted as a new quarantine.
    const again = await backfill();
    expect(again).toMatchObject({ status: 'ok', counts: { found: 1, quarantined: 0, written: 0 } });
    expect((await store.studies.get(SOURCE_ID, NIBABEL_STUDY_UID))?.status).toBe('quarantined');
    expect(await store.resources.listImagingStudies()).toEqual([]);
  });
});

describe('nibabel study written before the conflict appeared (deletion policy entered-in-error)', () => {
  let orthanc: OrthancServer;
  let store: SqliteStateStore;
  beforeAll(async () => {
    orthanc = await startOrthanc();
    store = openSqliteStore(':memory:');
  }, 60000);
  afterAll(async () => {
    store?.close();
    await orthanc?.stop();
  });

  it('is marked entered-in-error when quarantined, and written again after the PACS is fixed and it is replayed', async () => {
    await uploadNibabel(orthanc, PATIENT_1234_FILES);
    const { sync, backfill } = syncFor(orthanc, store, 'entered-in-error');
    expect((await backfill()).counts).toMatchObject({ written: 1, quarantined: 0 });
    const first = (await storedStudy(store, NIBABEL_STUDY_UID))!;
    expect(first).toMatchObject({ status: 'available', numberOfInstances: 2 });

    const intruders = await uploadNibabel(orthanc, EMPTY_PATIENT_FILES);
    expect((await backfill()).counts).toMatchObject({ quarantined: 1, written: 0 });
    expect(await store.studies.get(SOURCE_ID, NIBABEL_STUDY_UID)).toMatchObject({
      status: 'quarantined',
      resourceId: first.id,
    });
    expect((await store.studies.get(SOURCE_ID, NIBABEL_STUDY_UID))?.lastError).toContain('marked entered-in-error');
    expect((await storedStudy(store, NIBABEL_STUDY_UID))?.status).toBe('entered-in-error');

    // A replay while the PACS still reports both patients quarantines it again.
    expect(await store.studies.replay(SOURCE_ID, NIBABEL_STUDY_UID)).toBe(1);
    expect((await sync.runOnce(SOURCE_ID, { undated: false })).counts).toMatchObject({ quarantined: 1, written: 0 });
    expect((await store.studies.get(SOURCE_ID, NIBABEL_STUDY_UID))?.status).toBe('quarantined');

    // The PACS is fixed (the empty-ID files removed); the replayed study is written again, one patient's.
    for (const id of intruders) await orthanc.rest.delete(`/instances/${id}`);
    expect(await store.studies.replay(SOURCE_ID, NIBABEL_STUDY_UID)).toBe(1);
    expect((await sync.runOnce(SOURCE_ID, { undated: false })).counts).toMatchObject({ written: 1, quarantined: 0 });
    const fixed = (await storedStudy(store, NIBABEL_STUDY_UID)) as ImagingStudy;
    expect(fixed).toMatchObject({ status: 'available', numberOfInstances: 2 });
    expect(fixed.series?.[0].instance).toHaveLength(2);
    expect(fixed.subject?.identifier?.value).toBe('1234');
    expect(await store.studies.get(SOURCE_ID, NIBABEL_STUDY_UID)).toMatchObject({ status: 'synced', reason: null });
  });
});

describe('one Study UID, one Patient ID, two issuers (Orthanc merges them into one study row)', () => {
  let orthanc: OrthancServer;
  let store: SqliteStateStore;
  const uid = '2.25.140777';
  const part = (issuer: string, seriesUid: string, modality: 'CT' | 'MR') =>
    makeStudy({
      studyUid: uid,
      studyDate: daysAgo(1),
      patient: { id: 'Q12345', issuer, alphabetic: 'Chen^Mei', sex: 'F', birthDate: '19700101' },
      series: [makeSeries({ seriesUid, modality, instances: 2 })],
    });
  beforeAll(async () => {
    orthanc = await startOrthanc();
    await loadStudies(orthanc, [part('TWHOSP', `${uid}.1`, 'CT'), part('OTHERHOSP', `${uid}.2`, 'MR')]);
    store = openSqliteStore(':memory:');
  }, 60000);
  afterAll(async () => {
    store?.close();
    await orthanc?.stop();
  });

  it('is quarantined from its series, whose issuers disagree, and names the patients by series', async () => {
    const { sync, lines } = syncFor(orthanc, store);
    const run = await sync.runOnce(SOURCE_ID, { undated: false });
    expect(run.counts).toMatchObject({ found: 1, fetched: 1, quarantined: 1, written: 0 });
    expect(await store.resources.listImagingStudies()).toEqual([]);
    const state = (await store.studies.get(SOURCE_ID, uid))!;
    expect(state).toMatchObject({ status: 'quarantined', reason: 'study-uid-conflict' });
    expect(state.lastError).toMatch(/series and instances of Study Instance UID 2\.25\.140777 belong to 2 patients/);
    expect(state.lastError).toContain(`series ${uid}.1`);
    expect(state.lastError).toContain(`series ${uid}.2`);
    expect(state.lastError).not.toMatch(/Q12345|Chen|Mei/);
    expect(lines.filter((l) => /Q12345|Chen\^Mei/.test(l))).toEqual([]);
  });
});
