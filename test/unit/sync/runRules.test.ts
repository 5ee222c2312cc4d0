/**
 * The sync's rules, in milliseconds: the real sync service, mapper, SQLite store (in memory) and embedded sink,
 * with the in-memory PACS (test/harness/memoryPacs.ts, held to Orthanc's behaviour by the PacsSource contract)
 * and a FHIR-sink double whose answer per study each test sets. Every case here has a slower end-to-end twin
 * against a real Orthanc in test/integration/sync/ (sync, sinkOutage, runLoop, studyUidConflict, crash).
 * Tests assert what is recorded (study states, run records, checkpoints, stored resources), never log lines.
 */
import type { ImagingStudy } from 'fhir/r4';
import { sourceSchema } from '../../../src/config';
import { imagingStudyId } from '../../../src/mapping';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { FhirSinkError } from '../../../src/sinks/fhir';
import type { Sink } from '../../../src/sinks/sink';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { createSyncService, SourceBusyError, type SyncConfigInput, type SyncService } from '../../../src/sync';
import { makeInstance, makeSeries, makeStudy, SOP_CLASS, type SyntheticStudy } from '../../fixtures/synthetic';
import { MemoryPacs, pacsOutage, pacsRejection } from '../../harness/memoryPacs';
import { MemorySink } from '../../harness/memorySink';

const SOURCE_ID = 'memory';
/** Noon of TODAY in the source's zone (Asia/Taipei, UTC+8): the poll lists TODAY less the lookback. */
const TODAY = '20240315';
const NOON = Date.parse('2024-03-15T04:00:00Z');

/** A clock the test moves by hand. */
class FakeClock {
  private at = NOON;
  readonly now = (): Date => new Date(this.at);
  advance(seconds: number): void {
    this.at += seconds * 1000;
  }
}

interface Bridge {
  pacs: MemoryPacs;
  store: SqliteStateStore;
  /** The FHIR-server sink double, written after the (real) embedded sink. */
  fhir: MemorySink;
  clock: FakeClock;
  sync: SyncService;
  sinks: Sink[];
  settings: SyncConfigInput;
}

const stores: SqliteStateStore[] = [];
afterEach(() => stores.splice(0).forEach((s) => s.close()));

function service(b: Omit<Bridge, 'sync'>): SyncService {
  const source = sourceSchema.parse({
    id: SOURCE_ID,
    qidoBase: 'http://memory.invalid/dicom-web',
    defaultTimezone: 'Asia/Taipei',
  });
  return createSyncService({
    config: { sources: [source], sync: b.settings },
    store: b.store,
    sinks: b.sinks,
    sourceFactory: () => b.pacs,
    now: b.clock.now,
  });
}

/** A bridge over a fresh in-memory store; `sinks` replaces the default [embedded, fhir double]. */
function bridge(
  studies: SyntheticStudy[],
  settings: SyncConfigInput = {},
  sinks?: (store: SqliteStateStore, fhir: MemorySink) => Sink[],
): Bridge {
  const store = openSqliteStore(':memory:');
  stores.push(store);
  const fhir = new MemorySink('fhir');
  const parts = {
    pacs: new MemoryPacs(studies, { id: SOURCE_ID }),
    store,
    fhir,
    clock: new FakeClock(),
    sinks: sinks ? sinks(store, fhir) : [createEmbeddedSink(store), fhir],
    settings: { lookbackDays: 3, backoffBaseSeconds: 0, maxAttempts: 3, ...settings },
  };
  return { ...parts, sync: service(parts) };
}

/** The same store, PACS and sinks under a new service: what a restarted bridge process would be. */
function restarted(b: Bridge): Bridge {
  return { ...b, sync: service(b) };
}

const study = (over: Partial<SyntheticStudy> = {}) =>
  makeStudy({ studyDate: TODAY, series: [makeSeries({ instances: 1 })], ...over });
const studies = (n: number) => Array.from({ length: n }, () => study());
const uidsOf = (list: SyntheticStudy[]) => list.map((s) => s.studyUid).sort();
const stateOf = (b: Bridge, s: SyntheticStudy) => b.store.studies.get(SOURCE_ID, s.studyUid);
const poll = (b: Bridge) => b.sync.runOnce(SOURCE_ID);

async function statusesOf(b: Bridge, list: SyntheticStudy[]): Promise<(string | undefined)[]> {
  const states = await b.store.studies.getMany(
    SOURCE_ID,
    list.map((s) => s.studyUid),
  );
  return list.map((s) => states.get(s.studyUid)?.status);
}

async function storedUids(b: Bridge): Promise<string[]> {
  const stored = await b.store.resources.listImagingStudies({ sourceId: SOURCE_ID });
  return stored
    .map((s) => s.identifier!.find((i) => i.system === 'urn:dicom:uid')!.value!.replace('urn:oid:', ''))
    .sort();
}

describe('a PACS outage', () => {
  it.each([
    ['a network error', pacsOutage('network')],
    ['a timeout', pacsOutage('timeout')],
    ['HTTP 503', pacsOutage(503)],
  ])(
    'mid-run (%s): the run fails, the batch in hand is kept uncharged, and the next run syncs every study',
    async (_label, error) => {
      const corpus = studies(6);
      const b = bridge(corpus, { batchSize: 2 });
      // The first batch's details come back; the next fetch (made while the first batch is written) fails.
      b.pacs.fail('studyDetails', { error, after: 1, times: Infinity });

      const broken = await poll(b);
      expect(broken).toMatchObject({ status: 'failed', error: expect.stringMatching(/^PACS unavailable: /) });
      expect((await b.store.runs.listRuns(SOURCE_ID, 1))[0]).toMatchObject({ status: 'failed' });
      expect(await statusesOf(b, corpus)).toEqual(['synced', 'synced', 'failing', 'failing', undefined, undefined]);
      for (const s of corpus.slice(2, 4))
        expect(await stateOf(b, s)).toMatchObject({
          attempts: 0,
          dead: false,
          lastError: expect.stringMatching(/unavailable/),
        });
      // Due again at once, and the window is not done: the checkpoint stays where it was.
      expect((await b.store.studies.dueRetries(SOURCE_ID, b.clock.now())).map((s) => s.studyUid).sort()).toEqual(
        uidsOf(corpus.slice(2, 4)),
      );
      expect(await b.store.checkpoints.get(SOURCE_ID)).toBeUndefined();

      b.pacs.clearFaults();
      const next = await poll(b);
      expect(next).toMatchObject({
        status: 'ok',
        counts: { found: 6, unchanged: 2, fetched: 4, written: 4, failed: 0 },
      });
      expect(await statusesOf(b, corpus)).toEqual(corpus.map(() => 'synced'));
      expect(await storedUids(b)).toEqual(uidsOf(corpus));
      expect(await b.store.checkpoints.get(SOURCE_ID)).toBe(TODAY);
    },
  );

  it('while listing: the run fails before anything is fetched or recorded', async () => {
    const corpus = studies(3);
    const b = bridge(corpus);
    b.pacs.fail('findStudies', { error: pacsOutage(503) });

    expect(await poll(b)).toMatchObject({ status: 'failed', error: expect.stringMatching(/^PACS unavailable: /) });
    expect(b.pacs.callsOf('studyDetails')).toEqual([]);
    expect(await b.store.studies.counts(SOURCE_ID)).toMatchObject({ studies: 0 });

    expect(await poll(b)).toMatchObject({ status: 'ok', counts: { written: 3 } });
  });

  it('is not a refusal: a 400 for one study fails that study alone, charged; the rest are written', async () => {
    const corpus = studies(3);
    const [bad] = corpus;
    const b = bridge(corpus);
    b.pacs.failStudy(bad!.studyUid, pacsRejection(400));

    const run = await poll(b);
    expect(run).toMatchObject({ status: 'partial', counts: { found: 3, fetched: 2, written: 2, failed: 1 } });
    expect(await stateOf(b, bad!)).toMatchObject({
      status: 'failing',
      attempts: 1,
      lastError: expect.stringContaining('HTTP 400'),
    });
    expect(await storedUids(b)).toEqual(uidsOf(corpus.slice(1)));
    // The batch was refused, then fetched study by study.
    expect(b.pacs.callsOf('studyDetails').map((c) => c.studyUids.length)).toEqual([3, 1, 1, 1]);
  });
});

describe('a sink outage versus a sink rejection', () => {
  it.each([
    ['answers "unavailable" for every study', (f: MemorySink) => (f.unavailable = 'HTTP 503 after retries')],
    [
      'throws a network error',
      (f: MemorySink) => (f.throwing = new FhirSinkError('connect ECONNREFUSED', 'network', true)),
    ],
    ['throws HTTP 503', (f: MemorySink) => (f.throwing = new FhirSinkError('HTTP 503', 'http', true, 503))],
  ])(
    'a FHIR server that %s for 3 runs: each run fails, nothing is charged or dead-lettered; then all is written',
    async (_label, breakSink) => {
      const corpus = studies(4);
      const b = bridge(corpus, { maxAttempts: 2 });
      breakSink(b.fhir);
      for (let run = 1; run <= 3; run++) {
        const summary = await poll(b);
        expect(summary).toMatchObject({ status: 'failed', error: expect.stringMatching(/^sink unavailable: fhir: /) });
        expect(summary.counts.dead ?? 0).toBe(0);
        const states = await b.store.studies.list(SOURCE_ID, 'failing');
        expect(states.map((s) => s.studyUid).sort()).toEqual(uidsOf(corpus));
        for (const s of states) expect(s).toMatchObject({ attempts: 0, dead: false });
      }
      expect(await b.store.studies.list(SOURCE_ID, 'dead')).toEqual([]);

      b.fhir.unavailable = undefined;
      b.fhir.throwing = undefined;
      expect(await poll(b)).toMatchObject({ status: 'ok', counts: { failed: 0, dead: 0 } });
      expect(await statusesOf(b, corpus)).toEqual(corpus.map(() => 'synced'));
      expect([...b.fhir.held.keys()].sort()).toEqual(uidsOf(corpus));
      expect(await storedUids(b)).toEqual(uidsOf(corpus));
    },
  );

  it('a study one sink rejects is charged to it alone; the others are written by every sink', async () => {
    const corpus = studies(3);
    const [bad] = corpus;
    const b = bridge(corpus);
    b.fhir.reject(bad!.studyUid, 'HTTP 422');

    expect(await poll(b)).toMatchObject({ status: 'partial', counts: { written: 2, failed: 1 } });
    expect(await stateOf(b, bad!)).toMatchObject({
      status: 'failing',
      attempts: 1,
      lastError: 'sink rejected: fhir: HTTP 422',
    });
    expect([...b.fhir.held.keys()].sort()).toEqual(uidsOf(corpus.slice(1)));
  });

  it('an outage in one sink and a rejection in another: the outage wins, nobody is charged', async () => {
    const corpus = studies(2);
    const [bad] = corpus;
    const picky = new MemorySink('picky');
    picky.reject(bad!.studyUid);
    const down = new MemorySink('down');
    down.unavailable = 'HTTP 502';
    const b = bridge(corpus, {}, (store) => [createEmbeddedSink(store), picky, down]);

    expect(await poll(b)).toMatchObject({ status: 'failed', error: 'sink unavailable: down: HTTP 502' });
    for (const s of corpus) expect(await stateOf(b, s)).toMatchObject({ status: 'failing', attempts: 0 });
  });
});

describe('dead letters', () => {
  const causes: [string, RegExp, (b: Bridge, bad: SyntheticStudy) => void, (b: Bridge, bad: SyntheticStudy) => void][] =
    [
      [
        'the PACS refusing its details (400)',
        /HTTP 400/,
        (b, bad) => b.pacs.failStudy(bad.studyUid),
        (b) => b.pacs.clearFaults(),
      ],
      [
        'a sink rejecting it (422)',
        /^sink rejected: fhir: HTTP 422$/,
        (b, bad) => b.fhir.reject(bad.studyUid),
        (b, bad) => b.fhir.accept(bad.studyUid),
      ],
      [
        'the mapper failing it (no Modality)',
        /^mapping: series-missing-modality/,
        (b, bad) => b.pacs.update(bad.studyUid, (s) => delete (s.series[0] as { modality?: string }).modality),
        (b, bad) => b.pacs.update(bad.studyUid, (s) => (s.series[0]!.modality = 'CT')),
      ],
    ];

  it.each(causes)(
    'failing through %s: dead after maxAttempts, left alone until replayed, then written',
    async (_label, error, breakIt, fixIt) => {
      const corpus = studies(3);
      const bad = corpus[1]!;
      const b = bridge(corpus, { maxAttempts: 2 });
      breakIt(b, bad);

      expect(await poll(b)).toMatchObject({ status: 'partial', counts: { written: 2, failed: 1, dead: 0 } });
      expect(await stateOf(b, bad)).toMatchObject({
        status: 'failing',
        attempts: 1,
        dead: false,
        lastError: expect.stringMatching(error),
      });
      expect(await poll(b)).toMatchObject({ status: 'partial', counts: { unchanged: 2, failed: 1, dead: 1 } });
      expect(await stateOf(b, bad)).toMatchObject({ status: 'dead', attempts: 2, dead: true });

      // A dead letter is not fetched again, even once the cause is gone, until an operator replays it.
      fixIt(b, bad);
      b.pacs.resetCalls();
      expect(await poll(b)).toMatchObject({ status: 'ok', counts: { skipped: 1, fetched: 0, failed: 0 } });
      expect(b.pacs.detailFetchedUids()).toEqual([]);
      expect(await b.store.studies.replay(SOURCE_ID, bad.studyUid)).toBe(1);
      expect(await poll(b)).toMatchObject({ status: 'ok', counts: { written: 1, failed: 0 } });
      expect(await stateOf(b, bad)).toMatchObject({ status: 'synced', attempts: 0, lastError: null });
      expect(await storedUids(b)).toEqual(uidsOf(corpus));
    },
  );
});

describe('retry timing', () => {
  it('a failed study waits out its backoff (doubling, capped) and is fetched again only once due', async () => {
    const bad = study();
    const b = bridge([bad], { backoffBaseSeconds: 60, backoffMaxSeconds: 150, maxAttempts: 10 });
    b.pacs.failStudy(bad.studyUid);
    const failedAt = async (attempts: number, retryInSeconds: number) => {
      const state = (await stateOf(b, bad))!;
      expect(state).toMatchObject({ status: 'failing', attempts });
      expect(Date.parse(state.nextRetryAt!)).toBe(b.clock.now().getTime() + retryInSeconds * 1000);
    };

    await poll(b);
    await failedAt(1, 60);
    b.clock.advance(59);
    b.pacs.resetCalls();
    expect(await poll(b)).toMatchObject({ status: 'ok', counts: { skipped: 1, fetched: 0 } });
    expect(b.pacs.detailFetchedUids()).toEqual([]);
    expect((await stateOf(b, bad))!.attempts).toBe(1);

    b.clock.advance(1);
    await poll(b);
    await failedAt(2, 120);
    b.clock.advance(120);
    await poll(b);
    await failedAt(3, 150); // 240 s, capped at backoffMaxSeconds

    b.pacs.clearFaults();
    b.clock.advance(150);
    expect(await poll(b)).toMatchObject({ status: 'ok', counts: { written: 1 } });
    expect(await stateOf(b, bad)).toMatchObject({ status: 'synced', attempts: 0, nextRetryAt: null });
  });

  it('a failing study that changed on the PACS is tried at once, backoff or not', async () => {
    const bad = study();
    const b = bridge([bad], { backoffBaseSeconds: 3600 });
    b.pacs.failStudy(bad.studyUid);
    await poll(b);
    expect((await stateOf(b, bad))!.attempts).toBe(1);

    b.pacs.clearFaults();
    b.pacs.update(bad.studyUid, (s) => (s.description = 'CT chest, corrected'));
    b.clock.advance(10);
    expect(await poll(b)).toMatchObject({ counts: { fetched: 1, written: 1 } });
    expect(await stateOf(b, bad)).toMatchObject({ status: 'synced' });
  });

  it('a due failure outside the polled windows is looked up by its UID; one gone from the PACS is charged', async () => {
    const old = study({ studyDate: '20240101' });
    const gone = study({ studyDate: '20240102' });
    const b = bridge([old], { undatedSweep: false });
    const earlier = (s: SyntheticStudy) => ({
      studyUid: s.studyUid,
      studyDate: s.studyDate!,
      fingerprint: null,
      error: 'earlier',
      countAttempt: true,
      maxAttempts: 5,
      retryDelaySeconds: () => 0,
      at: b.clock.now(),
    });
    await b.store.studies.recordFailures(SOURCE_ID, [earlier(old), earlier(gone)]);

    expect(await poll(b)).toMatchObject({ counts: { found: 1, fetched: 1, written: 1, failed: 1 } });
    expect(b.pacs.callsOf('findStudies').map((c) => c.window)).toEqual([{ from: '20240312', to: TODAY }]);
    expect(b.pacs.callsOf('searchStudies').map((c) => c.studyUids)).toEqual([[old.studyUid], [gone.studyUid]]);
    expect(await stateOf(b, old)).toMatchObject({ status: 'synced', attempts: 0 });
    expect(await stateOf(b, gone)).toMatchObject({
      status: 'failing',
      attempts: 2,
      lastError: 'study not found on the PACS',
    });
  });
});

describe('Study UID conflicts', () => {
  const TWO_PATIENTS = '2.25.6660001';
  const under = (id: string, modality: 'CT' | 'MR') =>
    study({
      studyUid: TWO_PATIENTS,
      patient: { id, alphabetic: `${id}^Name` },
      series: [makeSeries({ modality, instances: 1 })],
    });

  it('a Study UID under two patients is quarantined, never written nor counted twice; fixed and replayed, it is written', async () => {
    const b = bridge([under('PID-ALPHA', 'CT'), under('PID-BETA', 'MR')]);

    expect(await poll(b)).toMatchObject({ status: 'partial', counts: { found: 1, quarantined: 1, written: 0 } });
    const state = (await b.store.studies.get(SOURCE_ID, TWO_PATIENTS))!;
    expect(state).toMatchObject({ status: 'quarantined', reason: 'study-uid-conflict' });
    expect(state.lastError).toMatch(/under 2 patients/);
    expect(state.lastError).not.toMatch(/PID-ALPHA|PID-BETA|\^Name/);
    expect(b.pacs.callsOf('studyDetails')).toEqual([]);
    expect(await storedUids(b)).toEqual([]);
    expect(b.fhir.batches).toEqual([]);

    expect(await poll(b)).toMatchObject({ status: 'ok', counts: { found: 1, quarantined: 0, written: 0 } });
    expect((await b.store.studies.get(SOURCE_ID, TWO_PATIENTS))?.status).toBe('quarantined');

    b.pacs.remove(TWO_PATIENTS, 'PID-BETA');
    expect(await b.store.studies.replay(SOURCE_ID, TWO_PATIENTS)).toBe(1);
    expect(await poll(b)).toMatchObject({ status: 'ok', counts: { written: 1, quarantined: 0 } });
    expect(await b.store.studies.get(SOURCE_ID, TWO_PATIENTS)).toMatchObject({ status: 'synced', reason: null });
    const stored = await b.store.resources.get<ImagingStudy>('ImagingStudy', imagingStudyId(TWO_PATIENTS));
    expect(stored?.subject?.identifier?.value).toBe('PID-ALPHA');
  });

  it('one Study UID and Patient ID under two issuers (one PACS study) is quarantined from its series', async () => {
    const parts = ['TWHOSP', 'OTHERHOSP'].map((issuer, i) =>
      study({
        studyUid: TWO_PATIENTS,
        patient: { id: 'Q12345', issuer },
        series: [makeSeries({ seriesUid: `${TWO_PATIENTS}.${i + 1}`, instances: 1 })],
      }),
    );
    const b = bridge(parts);

    expect((await poll(b)).counts).toMatchObject({ found: 1, fetched: 1, quarantined: 1, written: 0 });
    const state = (await b.store.studies.get(SOURCE_ID, TWO_PATIENTS))!;
    expect(state).toMatchObject({ status: 'quarantined', reason: 'study-uid-conflict' });
    expect(state.lastError).toContain(`series ${TWO_PATIENTS}.1`);
    expect(state.lastError).not.toContain('Q12345');
    expect(await storedUids(b)).toEqual([]);
  });

  it('a study written before the conflict appeared is marked entered-in-error in every sink (deletion policy)', async () => {
    const b = bridge([under('PID-ALPHA', 'CT')], { reconcile: { deletion: 'entered-in-error' } });
    expect((await poll(b)).counts).toMatchObject({ written: 1 });

    b.pacs.put(under('PID-BETA', 'MR'));
    expect((await poll(b)).counts).toMatchObject({ quarantined: 1, written: 0 });
    expect((await b.store.studies.get(SOURCE_ID, TWO_PATIENTS))?.lastError).toContain('marked entered-in-error');
    const stored = await b.store.resources.get<ImagingStudy>('ImagingStudy', imagingStudyId(TWO_PATIENTS));
    expect(stored?.status).toBe('entered-in-error');
    expect(b.fhir.removals).toEqual([{ studyUid: TWO_PATIENTS, action: 'entered-in-error' }]);
  });
});

describe('a stop request', () => {
  it('mid-run: the batch in hand is finished and recorded, the run ends interrupted; the next run resumes', async () => {
    const corpus = studies(8);
    const b = bridge(corpus, { batchSize: 2 });
    let stopping: Promise<void> | undefined;
    // The stop comes while the first batch is being written: that batch must still be recorded whole.
    b.fhir.onWrite = () => {
      stopping ??= b.sync.stop();
    };

    const first = await poll(b);
    await stopping;
    expect(first).toMatchObject({ status: 'interrupted', counts: { written: 2, fetched: 2 } });
    expect(await statusesOf(b, corpus)).toEqual(['synced', 'synced', ...corpus.slice(2).map(() => undefined)]);
    expect(await storedUids(b)).toEqual(uidsOf(corpus.slice(0, 2)));
    expect(await b.store.checkpoints.get(SOURCE_ID)).toBeUndefined();

    b.fhir.onWrite = undefined;
    b.pacs.resetCalls();
    const resumed = restarted(b);
    expect(await poll(resumed)).toMatchObject({
      status: 'ok',
      counts: { found: 8, unchanged: 2, fetched: 6, written: 6 },
    });
    expect(b.pacs.detailFetchedUids().sort()).toEqual(uidsOf(corpus.slice(2)));
    expect((await b.store.runs.listRuns(SOURCE_ID, 5)).map((r) => r.status)).toEqual(['ok', 'interrupted']);
    expect(await b.store.checkpoints.get(SOURCE_ID)).toBe(TODAY);
  });

  it('a second run of a source while one is going is refused', async () => {
    const b = bridge(studies(2));
    b.pacs.delay('findStudies', 20);
    const first = poll(b);
    await expect(poll(b)).rejects.toBeInstanceOf(SourceBusyError);
    expect(await first).toMatchObject({ status: 'ok', counts: { written: 2 } });
  });
});

describe('change detection by fingerprint', () => {
  it('an unchanged re-poll lists only: no detail fetch, no sink write, no new version', async () => {
    const corpus = studies(5);
    const b = bridge(corpus);
    expect(await poll(b)).toMatchObject({ counts: { written: 5 } });
    const versions = (await b.store.resources.listImagingStudies()).map((s) => `${s.id}@${s.meta?.versionId}`);
    const batches = b.fhir.batches.length;

    b.pacs.resetCalls();
    expect(await poll(b)).toMatchObject({
      status: 'ok',
      counts: { found: 5, unchanged: 5, fetched: 0, written: 0 },
    });
    expect(b.pacs.calls.map((c) => c.kind)).toEqual(['findStudies']);
    expect(b.fhir.batches).toHaveLength(batches);
    expect((await b.store.resources.listImagingStudies()).map((s) => `${s.id}@${s.meta?.versionId}`)).toEqual(versions);
  });

  it('a study that changed (a new instance) is fetched and rewritten alone', async () => {
    const corpus = studies(4);
    const grown = corpus[2]!;
    const b = bridge(corpus);
    await poll(b);

    b.pacs.update(grown.studyUid, (s) =>
      s.series[0]!.instances.push(makeInstance({ sopClassUid: SOP_CLASS.CT, number: 2 })),
    );
    b.pacs.resetCalls();
    expect(await poll(b)).toMatchObject({ counts: { found: 4, unchanged: 3, fetched: 1, written: 1 } });
    expect(b.pacs.detailFetchedUids()).toEqual([grown.studyUid]);
    const stored = await b.store.resources.get<ImagingStudy>('ImagingStudy', imagingStudyId(grown.studyUid));
    expect(stored).toMatchObject({ numberOfInstances: 2, meta: { versionId: '2' } });
    expect(b.fhir.held.get(grown.studyUid)?.version).toBe(2);
  });
});

describe('discovery beyond the poll windows', () => {
  it('undated studies are synced when the run asks for them, and only then', async () => {
    const undated = study({ studyDate: undefined });
    const b = bridge([study(), undated]);
    expect((await poll(b)).counts).toMatchObject({ found: 1, written: 1 });
    expect(await stateOf(b, undated)).toBeUndefined();
    expect((await b.sync.runOnce(SOURCE_ID, { undated: true })).counts).toMatchObject({ written: 1, unchanged: 1 });
    expect(await stateOf(b, undated)).toMatchObject({ status: 'synced', studyDate: null });
  });

  it("a change feed's studies are looked up by UID list; those the PACS lacks are reported missing", async () => {
    const corpus = studies(3);
    const b = bridge(corpus);
    const { summary, missing } = await b.sync.syncStudyUids(SOURCE_ID, [...uidsOf(corpus), '2.25.404']);
    expect(summary).toMatchObject({ kind: 'feed', status: 'ok', counts: { written: 3 } });
    expect(missing).toEqual(['2.25.404']);
    expect(b.pacs.callsOf('searchStudies').map((c) => c.studyUids.length)).toEqual([4]);
  });
});
