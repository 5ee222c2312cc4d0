/**
 * A mass removal held for a person (issue 21, item 3), against a real Orthanc and a real FHIR server, with the
 * real numbers and the default reconcile.maxRemovals: 80 of 100 studies vanishing (a volume offline) removes
 * none and holds the sweep; the studies coming back lets the hold lapse; 3 of 100 deleted are removed as before;
 * a confirmed hold is applied to those still missing, and covers no more than it held. Then a PACS answering
 * rows without Study Instance UIDs, in the listing or in the look-ups by UID: the sweep fails, nothing removed.
 */
import type { ImagingStudy } from 'fhir/r4';
import { renderStatusPage, buildStatusModel } from '../../../src/api/ops/statusPage';
import { createMetrics } from '../../../src/metrics';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { createFhirSink } from '../../../src/sinks/fhir';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService, sourceCoverage, type SyncConfigInput } from '../../../src/sync';
import { generateCorpus, loadStudies } from '../../fixtures/synthetic';
import { startFhirServer, type FhirTestServer } from '../../harness/fhirServer';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { startQidoRewrite, type QidoRewrite } from '../../harness/qidoRewrite';
import { parsePrometheus, sampleValue } from '../metrics/promText';
import { deleteFromOrthanc, SOURCE_ID, sourceConfig, storedStudy } from './common';

let orthanc: OrthancServer;
let fhir: FhirTestServer;
let pacs: QidoRewrite;
let store: SqliteStateStore;
const corpus = generateCorpus({
  seed: 21,
  studies: 100,
  days: { from: '20220101', count: 50 },
  undated: 0,
  maxSeries: 1,
  maxInstances: 1,
});
const uids = corpus.map((s) => s.studyUid);
// Sweeps unpaced; entered-in-error, as the tester had it. reconcile.maxRemovals is left at its default.
const baseSync: SyncConfigInput = {
  lookbackDays: 1,
  undatedSweep: false,
  sweep: { maxRequestsPerMinute: 100000 },
  reconcile: { deletion: 'entered-in-error' },
};

function service(sync: SyncConfigInput = baseSync) {
  return createSyncService({
    config: { sources: [sourceConfig(pacs.via(orthanc.dicomWebBase))], sync },
    store,
    sinks: [createEmbeddedSink(store), createFhirSink({ baseUrl: fhir.baseUrl })],
  });
}

/** Study UIDs of the ImagingStudies marked entered-in-error: in the store, and on the FHIR server. */
async function withdrawn(): Promise<{ store: string[]; server: string[] }> {
  const uidOf = (r: ImagingStudy) => r.identifier?.find((i) => i.value?.startsWith('urn:oid:'))?.value?.slice(8) ?? '';
  const marked = (all: ImagingStudy[]) =>
    all
      .filter((r) => r.status === 'entered-in-error')
      .map(uidOf)
      .sort();
  const onServer = await fhir.repo.search({ resourceType: 'ImagingStudy', count: 1000 });
  return {
    store: marked(await store.resources.listImagingStudies()),
    server: marked((onServer.entry ?? []).map((e) => e.resource as unknown as ImagingStudy)),
  };
}

const removedInStore = async () => (await store.studies.list(SOURCE_ID, 'removed')).map((s) => s.studyUid).sort();

beforeAll(async () => {
  [orthanc, fhir] = await Promise.all([startOrthanc(), startFhirServer()]);
  pacs = await startQidoRewrite(orthanc.dicomWebBase);
  await loadStudies(orthanc, corpus);
  store = openSqliteStore(':memory:');
}, 120000);

afterAll(async () => {
  store?.close();
  await pacs?.stop();
  await fhir?.stop();
  await orthanc?.stop();
});

describe('a mass removal, with the default limit (50 studies, 10 %)', () => {
  it('a first sweep writes the 100 studies', async () => {
    expect(await service().sweep(SOURCE_ID)).toMatchObject({ status: 'ok', counts: { written: 100 } });
    expect((await fhir.repo.search({ resourceType: 'ImagingStudy', count: 1000 })).entry).toHaveLength(100);
  }, 60000);

  it('80 of 100 vanishing (a volume offline) removes none: the sweep completes, held, and is flagged', async () => {
    const offline = uids.slice(0, 80);
    offline.forEach((u) => pacs.hidden.add(u));
    pacs.lookedUp.length = 0;

    const run = await service().sweep(SOURCE_ID);
    expect(run).toMatchObject({ status: 'partial', counts: { listed: 20, vanished: 80, held: 80 } });
    expect(run.counts.removed ?? 0).toBe(0);
    expect(await withdrawn()).toEqual({ store: [], server: [] });
    expect(await removedInStore()).toEqual([]);
    // Held on the listing's count: no look-up by UID spent on studies that are not removed anyway.
    expect(pacs.lookedUp.filter((u) => offline.includes(u))).toEqual([]);
    // The sweep still completed, with its coverage and the numbers of the hold.
    const last = await store.sweeps.lastComplete(SOURCE_ID);
    expect(last).toMatchObject({ listed: 20, synced: 20, vanished: 80 });
    expect(last?.held).toEqual({ removals: 80, of: 100, limit: 10, confirmedAt: null });

    const coverage = await sourceCoverage(store, SOURCE_ID, new Date());
    expect(coverage.health).toBe('held');
    expect(coverage.problems[0]).toMatch(/would remove 80 of 100 studies \(more than the 10 .*removed none/);
    const metrics = createMetrics().observe({ store, coverage: (id, now) => sourceCoverage(store, id, now) });
    const samples = parsePrometheus((await metrics.scrape()).body);
    expect(sampleValue(samples, 'pacs_fhir_bridge_sweep_removals_held', { source: SOURCE_ID })).toBe(80);
    expect(
      sampleValue(samples, 'pacs_fhir_bridge_source_coverage_healthy', { source: SOURCE_ID, health: 'held' }),
    ).toBe(0);
    const page = renderStatusPage(await buildStatusModel(store, [SOURCE_ID], new Date(), 5), 'csrf');
    expect(page).toContain('data-health="held"');
    expect(page).toContain('<span class="value" data-field="removals-held">80 of 100</span>');
  }, 60000);

  it('the studies come back: the next sweep has nothing to remove and the hold lapses', async () => {
    pacs.hidden.clear();
    const run = await service().sweep(SOURCE_ID);
    expect(run).toMatchObject({ status: 'ok', counts: { vanished: 0 } });
    expect(run.counts.held).toBeUndefined();
    expect((await store.sweeps.lastComplete(SOURCE_ID))?.held).toBeNull();
    expect((await sourceCoverage(store, SOURCE_ID, new Date())).health).toBe('ok');
    expect(await withdrawn()).toEqual({ store: [], server: [] });
  }, 60000);

  it('3 of 100 deleted from the PACS are removed as before', async () => {
    const deleted = uids.slice(97);
    for (const uid of deleted) await deleteFromOrthanc(orthanc, uid);
    const run = await service().sweep(SOURCE_ID);
    expect(run).toMatchObject({ status: 'ok', counts: { listed: 97, vanished: 3, removed: 3 } });
    expect(run.counts.held).toBeUndefined();
    expect(await withdrawn()).toEqual({ store: [...deleted].sort(), server: [...deleted].sort() });
    expect((await store.sweeps.lastComplete(SOURCE_ID))?.held).toBeNull();
  }, 60000);

  it('a confirmed hold is applied to the studies still missing, and covers no more than it held', async () => {
    const offline = uids.slice(0, 80);
    offline.forEach((u) => pacs.hidden.add(u));
    expect(await service().sweep(SOURCE_ID)).toMatchObject({ counts: { vanished: 80, held: 80 } });
    expect((await store.sweeps.lastComplete(SOURCE_ID))?.held).toMatchObject({ removals: 80, of: 97, limit: 9 });
    expect(await store.sweeps.confirmHeld(SOURCE_ID)).toBeDefined();

    // One more vanished after the confirmation: 81 is not what was confirmed, so the sweep holds again.
    pacs.hidden.add(uids[80]!);
    const more = await service().sweep(SOURCE_ID);
    expect(more).toMatchObject({ counts: { vanished: 81, held: 81 } });
    expect(await removedInStore()).toHaveLength(3);
    expect((await store.sweeps.lastComplete(SOURCE_ID))?.held).toMatchObject({ removals: 81, confirmedAt: null });

    // Confirmed again; meanwhile one is missing from the listing only: its look-up by UID finds it, it stays.
    await store.sweeps.confirmHeld(SOURCE_ID);
    pacs.hidden.delete(uids[0]!);
    pacs.unlisted.add(uids[0]!);
    const applied = await service().sweep(SOURCE_ID);
    expect(applied).toMatchObject({ status: 'ok', counts: { vanished: 80, removed: 80 } });
    expect(applied.counts.held).toBeUndefined();
    const gone = [...uids.slice(1, 81), ...uids.slice(97)].sort();
    expect(await withdrawn()).toEqual({ store: gone, server: gone });
    expect((await store.studies.get(SOURCE_ID, uids[0]!))?.status).toBe('synced');
    expect((await store.sweeps.lastComplete(SOURCE_ID))?.held).toBeNull();
    expect((await sourceCoverage(store, SOURCE_ID, new Date())).health).not.toBe('held');
  }, 120000);
});

describe('a PACS answering rows without Study Instance UIDs', () => {
  // No limit to speak of: what keeps the studies is the malformed-answer check alone.
  const unlimited: SyncConfigInput = {
    ...baseSync,
    reconcile: { ...baseSync.reconcile, maxRemovals: { count: 1000, share: 1 } },
  };
  const present = uids.slice(81, 97);
  const removedBefore = async () => (await removedInStore()).length;

  beforeAll(() => {
    // The 80 removed above stay offline; two more vanish: the removals a junk answer would confirm.
    pacs.unlisted.clear();
    pacs.hidden.add(present[0]!).add(present[1]!);
  });

  it('in the listing: the sweep fails and removes nothing', async () => {
    const before = await removedBefore();
    pacs.junk = 'listings';
    const run = await service(unlimited).sweep(SOURCE_ID);
    expect(run).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/has no StudyInstanceUID \(0020,000D\)/),
    });
    expect(await removedBefore()).toBe(before);
    expect((await store.studies.get(SOURCE_ID, present[0]!))?.status).toBe('synced');
    expect((await storedStudy(store, present[0]!))?.status).not.toBe('entered-in-error');
  }, 60000);

  it('in the look-ups that confirm a vanished study: the sweep fails and removes nothing', async () => {
    const before = await removedBefore();
    pacs.junk = 'lookups';
    pacs.lookedUp.length = 0;
    const run = await service(unlimited).sweep(SOURCE_ID);
    // The first junk answer ends it: the other vanished study is not looked up at all.
    expect(pacs.lookedUp.filter((u) => u === present[0] || u === present[1])).toHaveLength(1);
    expect(run).toMatchObject({ status: 'failed', error: expect.stringMatching(/has no StudyInstanceUID/) });
    expect(await removedBefore()).toBe(before);
    expect((await withdrawn()).server).not.toContain(present[0]);
  }, 60000);

  it('sane answers again: the sweep resumes and removes the two that really vanished', async () => {
    pacs.junk = 'none';
    const run = await service(unlimited).sweep(SOURCE_ID);
    expect(run).toMatchObject({ status: 'ok', counts: { vanished: 2, removed: 2 } });
    expect((await withdrawn()).server).toEqual(expect.arrayContaining([present[0], present[1]]));
  }, 60000);
});
