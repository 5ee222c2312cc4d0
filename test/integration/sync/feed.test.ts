/**
 * Discovery through Orthanc's change feed, within seconds whatever the StudyDate, against a real Orthanc
 * (StableAge 1 s), the real sync service as `serve` runs it (start()), the embedded store and a real FHIR engine:
 * - an old-dated study stored after a full sync, which no StudyDate poll would list, is synced;
 * - a study stored in several steps is written once, complete, after StableStudy;
 * - a study never reported stable (StableAge longer than the test) is synced once quiet;
 * - the feed going back (Orthanc's database replaced) requests a sweep, and the feed carries on;
 * - `auto` detects Orthanc (with its authentication) and nothing else.
 */
import type { ImagingStudy } from 'fhir/r4';
import { sourceSchema, type SourceInput } from '../../../src/config';
import { createChangeFeed } from '../../../src/dicomweb/changeFeeds';
import { createEmbeddedSink } from '../../../src/sinks/embeddedSink';
import { createFhirSink } from '../../../src/sinks/fhir';
import { openSqliteStore, type SqliteStateStore } from '../../../src/state';
import { SqliteFeedState } from '../../../src/state/sqlite/feedState';
import { createSyncService, type SyncService } from '../../../src/sync';
import {
  generateCorpus,
  loadStudies,
  makeSeries,
  makeStudy,
  studyToDicomFiles,
  type SyntheticStudy,
} from '../../fixtures/synthetic';
import { startFhirServer, type FhirTestServer } from '../../harness/fhirServer';
import { startOrthanc, type OrthancServer } from '../../harness/orthanc';
import { until } from '../../harness/until';
import { daysAgo, instancesOf, SOURCE_ID, sourceConfig, storedStudy } from './common';

/** No scheduled StudyDate poll during these tests: whatever is synced after start() came through the feed. */
const NEVER = '0 0 1 1 *';

let fhir: FhirTestServer;
const stores: SqliteStateStore[] = [];
const services: SyncService[] = [];

beforeAll(async () => {
  fhir = await startFhirServer();
}, 60000);

afterAll(async () => {
  await Promise.all(services.map((s) => s.stop()));
  stores.forEach((s) => s.close());
  await fhir?.stop();
});

function bridge(orthanc: OrthancServer, over: Partial<SourceInput> = {}) {
  const store = openSqliteStore(':memory:');
  stores.push(store);
  const sync = createSyncService({
    config: {
      sources: [sourceConfig(orthanc.dicomWebBase, { changeFeed: { intervalSeconds: 0.2 }, ...over })],
      sync: { cron: NEVER, lookbackDays: 3 },
    },
    store,
    sinks: [createEmbeddedSink(store), createFhirSink({ baseUrl: fhir.baseUrl })],
  });
  services.push(sync);
  return { store, sync, state: new SqliteFeedState(store.db) };
}

async function fhirStudy(uid: string): Promise<ImagingStudy | undefined> {
  return (await fhir.all<ImagingStudy>('ImagingStudy')).find((s) =>
    s.identifier?.some((i) => i.value === `urn:oid:${uid}`),
  );
}

/** Uploads a study's instances one at a time, `gapMs` apart (a modality sending a study over a while). */
async function storeSlowly(orthanc: OrthancServer, study: SyntheticStudy, gapMs: number): Promise<void> {
  for (const file of studyToDicomFiles(study)) {
    await orthanc.upload(file);
    await new Promise((r) => setTimeout(r, gapMs));
  }
}

describe('Orthanc change feed (StableAge 1 s)', () => {
  let orthanc: OrthancServer;
  let b: ReturnType<typeof bridge>;
  const recent = generateCorpus({ seed: 41, studies: 5, days: { from: daysAgo(2), count: 2 }, undated: 0 });

  beforeAll(async () => {
    orthanc = await startOrthanc({ stableAge: 1 });
    await loadStudies(orthanc, recent);
  }, 60000);
  afterAll(() => orthanc?.stop());

  it('syncs an old-dated study stored after a full sync, which no StudyDate poll lists', async () => {
    b = bridge(orthanc);
    expect(await b.sync.runOnce(SOURCE_ID)).toMatchObject({ status: 'ok', counts: { written: 5 } });
    b.sync.start();
    await until('the feed checkpoint', () => b.state.checkpoint(SOURCE_ID));

    const late = makeStudy({ studyDate: '20190101', description: 'outside prior' });
    await loadStudies(orthanc, [late]);
    await until('the late study in the store', () => storedStudy(b.store, late.studyUid));
    await until('the late study in the FHIR server', () => fhirStudy(late.studyUid));

    // Feed runs still going (StableStudy of the base studies may arrive late on a busy machine) are let finish.
    const feedRuns = await until('the feed runs to finish', async () => {
      const runs = (await b.store.runs.listRuns(SOURCE_ID)).filter((r) => r.kind === 'feed');
      return runs.length && runs.every((r) => r.status !== 'running') ? runs : undefined;
    });
    expect(feedRuns.map((r) => [r.status, r.error, r.counts.failed])).toEqual(feedRuns.map(() => ['ok', null, 0]));
    expect(feedRuns.reduce((n, r) => n + (r.counts.written ?? 0), 0)).toBe(1);
    expect((await b.state.pendingSummary(SOURCE_ID)).count).toBe(0);
    // A StudyDate poll would not have found it: 2019 is far outside the lookback.
    expect(await b.store.studies.get(SOURCE_ID, late.studyUid)).toMatchObject({
      status: 'synced',
      studyDate: '20190101',
    });
  });

  it('writes a study stored in several steps once, complete, after StableStudy', async () => {
    const study = makeStudy({
      studyDate: '20200202',
      series: [makeSeries({ modality: 'CT', instances: 3 }), makeSeries({ modality: 'CT', number: 2, instances: 2 })],
    });
    await storeSlowly(orthanc, study, 300);
    const stored = await until('the study in the store', () => storedStudy(b.store, study.studyUid));
    expect(stored.numberOfInstances).toBe(instancesOf(study));
    expect(stored.meta?.versionId).toBe('1');
    const inFhir = await until('the study in the FHIR server', () => fhirStudy(study.studyUid));
    expect(inFhir.numberOfInstances).toBe(instancesOf(study));
    expect(await fhir.history('ImagingStudy', inFhir.id!)).toHaveLength(1);
    // Nothing more comes of it.
    await new Promise((r) => setTimeout(r, 2500));
    expect((await storedStudy(b.store, study.studyUid))!.meta?.versionId).toBe('1');
    expect(await fhir.history('ImagingStudy', inFhir.id!)).toHaveLength(1);
  });

  it('new instances on an old study reach the store and the FHIR server', async () => {
    const grown = recent[0]!;
    const before = (await storedStudy(b.store, grown.studyUid))!;
    grown.series.push(makeSeries({ modality: 'MR', number: 9, instances: 2 }));
    await loadStudies(orthanc, [grown]);
    const after = await until('the grown study', async () => {
      const s = await storedStudy(b.store, grown.studyUid);
      return s?.meta?.versionId !== before.meta?.versionId ? s : undefined;
    });
    expect(after.numberOfInstances).toBe(instancesOf(grown));
    // The FHIR server is the second sink of the same batch: it has the grown study a moment after the store.
    const inFhir = await until('the grown study in FHIR', async () => {
      const s = await fhirStudy(grown.studyUid);
      return s?.numberOfSeries === grown.series.length ? s : undefined;
    });
    expect(inFhir.numberOfInstances).toBe(instancesOf(grown));
  });

  it('requests a sweep when the feed goes back (database replaced), then carries on from the new head', async () => {
    await b.sync.stop();
    const before = (await b.state.checkpoint(SOURCE_ID))!.lastSeq;
    expect(before).toBeGreaterThan(0);
    // Replace Orthanc's database: same server, empty index, so sequence numbers start again from 0.
    await orthanc.kill();
    const { rmSync } = await import('node:fs');
    rmSync(`${orthanc.storageDir}/db`, { recursive: true, force: true });
    await orthanc.restart();
    b.sync.start();
    const request = await until('a sweep request', () => b.state.sweepRequest(SOURCE_ID));
    expect(request.reason).toMatch(new RegExp(`went back from ${before} to 0`));
    expect((await b.state.checkpoint(SOURCE_ID))!.lastSeq).toBe(0);

    const next = makeStudy({ studyDate: '20180303' });
    await loadStudies(orthanc, [next]);
    await until('a study stored after the replacement', () => storedStudy(b.store, next.studyUid));
    await b.sync.stop();
  });
});

describe('a study never reported stable, and authentication', () => {
  let orthanc: OrthancServer;

  beforeAll(async () => {
    // StableAge 60 s: no StableStudy within the test; the feed's settle time (1 s) decides.
    orthanc = await startOrthanc({ stableAge: 60, users: { bridge: 'pw' } });
  }, 60000);
  afterAll(() => orthanc?.stop());

  const authed = { auth: { type: 'basic' as const, username: 'bridge', password: 'pw' } };

  it('is synced once nothing has happened to it for settleSeconds', async () => {
    const b = bridge(orthanc, { ...authed, changeFeed: { intervalSeconds: 0.2, settleSeconds: 1 } });
    b.sync.start();
    await until('the feed checkpoint', () => b.state.checkpoint(SOURCE_ID));
    const study = makeStudy({ studyDate: '20170707' });
    await loadStudies(orthanc, [study]);
    await until('the study in the store', () => storedStudy(b.store, study.studyUid));
    const inFhir = await until('the study in FHIR', () => fhirStudy(study.studyUid));
    expect(await fhir.history('ImagingStudy', inFhir.id!)).toHaveLength(1);
    await b.sync.stop();
  });

  it('auto detects Orthanc through its authentication, and no feed where /system is not Orthanc', async () => {
    const cfg = (over: Partial<SourceInput>) =>
      sourceSchema.parse({ id: 'x', qidoBase: orthanc.dicomWebBase, ...over });
    const feed = await createChangeFeed(cfg(authed));
    expect(feed?.type).toBe('orthanc');
    expect(await feed!.head()).toBeGreaterThan(0);
    // Wrong credentials: Orthanc answers 401 to /system, which is not taken for a feed.
    expect(
      await createChangeFeed(cfg({ auth: { type: 'basic', username: 'bridge', password: 'no' } })),
    ).toBeUndefined();
    // A FHIR server is not a PACS with a feed.
    const fhirRoot = fhir.baseUrl.replace(/\/fhir\/R4$/, '');
    expect(await createChangeFeed(cfg({ changeFeed: { restBase: fhirRoot } }))).toBeUndefined();
    expect(await createChangeFeed(cfg({ ...authed, changeFeed: { type: 'off' } }))).toBeUndefined();
  });
});
