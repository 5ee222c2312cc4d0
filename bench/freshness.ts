/**
 * Freshness with the change feed, from a study stored in the PACS to its ImagingStudy written: `serve` (the
 * built executable, its own process, default settings but for its PACS and FHIR server) runs against an Orthanc
 * holding a base of studies, while studies are stored into that Orthanc one after another, half dated today and
 * half years old. For each, the time from its last instance being stored to its ImagingStudy being in the bridge's
 * store and in the FHIR server (Medplum's engine, the tests' one). Then the feed's idle cost: the requests `serve`
 * makes to the PACS during a minute with nothing new, counted by a proxy in front of Orthanc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { imagingStudyId } from '../src/mapping';
import { addDays, todayIn } from '../src/time';
import { generateCorpus, loadStudies, studyToDicomFiles, type SyntheticStudy } from '../test/fixtures/synthetic';
import { startFaultProxy } from '../test/harness/faultProxy';
import { startFhirServer, type FhirTestServer } from '../test/harness/fhirServer';
import { startOrthanc } from '../test/harness/orthanc';
import { median, percentile } from './stats';

const ROOT = path.resolve(__dirname, '..');
const MAIN = path.join(ROOT, 'dist/cli/main.js');
const TZ = 'Asia/Taipei';

export interface FreshnessFigures {
  studies: number;
  /** Seconds from the study's last instance stored to its ImagingStudy in the bridge's store. */
  storeP50: number;
  storeP95: number;
  storeMax: number;
  /** … and in the FHIR server. */
  fhirP50: number;
  fhirP95: number;
  fhirMax: number;
}

export interface FreshnessResult {
  /** Orthanc's StableAge (s): a study is reported stable this long after its last instance. */
  stableAgeSeconds: number;
  /** changeFeed.intervalSeconds (idle) and busyIntervalSeconds (while studies arrive), the defaults. */
  feedIntervalSeconds: number;
  feedBusyIntervalSeconds: number;
  baseStudies: number;
  today: FreshnessFigures;
  oldDated: FreshnessFigures;
  /** Requests `serve` made to the PACS in an idle minute: to the change feed, and in all (0: not measured). */
  idleFeedRequestsPerMinute: number;
  idleRequestsPerMinute: number;
  /** Feed runs recorded (each a run of the studies that became ready together). */
  feedRuns: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function figures(store: number[], fhir: number[]): FreshnessFigures {
  const r = (v: number) => Math.round(v * 100) / 100;
  return {
    studies: store.length,
    storeP50: r(median(store)),
    storeP95: r(percentile(store, 0.95)),
    storeMax: r(Math.max(...store)),
    fhirP50: r(median(fhir)),
    fhirP95: r(percentile(fhir, 0.95)),
    fhirMax: r(Math.max(...fhir)),
  };
}

/** Reads the bridge's store from outside (WAL lets a reader in while `serve` writes). */
function storeReader(file: string) {
  let db: Database.Database | undefined;
  const open = () => {
    if (!db && existsSync(file)) db = new Database(file, { readonly: true, fileMustExist: true });
    return db;
  };
  return {
    has(uid: string): boolean {
      const row = open()
        ?.prepare(`SELECT 1 FROM resources WHERE resource_type = 'ImagingStudy' AND id = ?`)
        .get(imagingStudyId(uid));
      return !!row;
    },
    feedStarted(): boolean {
      try {
        return !!open()?.prepare('SELECT 1 FROM feed_state').get();
      } catch {
        return false;
      }
    },
    feedRuns(): number {
      return (open()?.prepare(`SELECT COUNT(*) AS n FROM runs WHERE kind = 'feed'`).get() as { n: number }).n;
    },
    close: () => db?.close(),
  };
}

function startServe(dir: string, config: object): ChildProcess {
  writeFileSync(path.join(dir, 'default.json'), JSON.stringify(config));
  writeFileSync(path.join(dir, 'bench.json'), '{}');
  const child = spawn(process.execPath, [MAIN, 'serve'], {
    cwd: ROOT,
    env: { ...process.env, NODE_CONFIG_DIR: dir, NODE_ENV: 'bench', SUPPRESS_NO_CONFIG_WARNING: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  child.on('exit', (code) => {
    if (code) process.stderr.write(`[bench] serve exited with ${code}:\n${stderr}\n`);
  });
  return child;
}

async function fhirUids(fhir: FhirTestServer): Promise<Set<string>> {
  const studies = await fhir.all<{ resourceType: 'ImagingStudy'; identifier?: { value?: string }[] }>(
    'ImagingStudy' as never,
  );
  return new Set(studies.flatMap((s) => (s.identifier ?? []).map((i) => (i.value ?? '').replace('urn:oid:', ''))));
}

export async function runFreshness(
  log: (line: string) => void,
  opts: { stableAge?: number; studies?: number; baseStudies?: number; idleSeconds?: number } = {},
): Promise<FreshnessResult> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npm run build" (npm run bench does)`);
  const stableAge = opts.stableAge ?? 2;
  const count = opts.studies ?? 40;
  const baseCount = opts.baseStudies ?? 200;
  const today = todayIn(TZ, new Date());
  const base = generateCorpus({ seed: 91, studies: baseCount, days: { from: addDays(today, -30), count: 30 } });
  const fresh = generateCorpus({ seed: 92, studies: count / 2, days: { from: today, count: 1 }, undated: 0 });
  const old = generateCorpus({ seed: 93, studies: count / 2, days: { from: '20150101', count: 2000 }, undated: 0 });
  // Interleaved: today's and old-dated studies arrive alike.
  const arrivals = fresh.flatMap((s, i) => [s, old[i]!]);

  const orthanc = await startOrthanc({ stableAge });
  const proxy = await startFaultProxy(orthanc.restUrl);
  const fhir = await startFhirServer();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-freshness-'));
  const storeFile = path.join(dir, 'bridge.sqlite');
  const reader = storeReader(storeFile);
  let serve: ChildProcess | undefined;
  try {
    log(`freshness: ${baseCount} base studies into Orthanc (StableAge ${stableAge} s)`);
    await loadStudies(orthanc, base, 8);
    serve = startServe(dir, {
      sources: [{ id: 'bench', qidoBase: proxy.via(orthanc.dicomWebBase), defaultTimezone: TZ }],
      store: { path: storeFile },
      sinks: { fhir: { baseUrl: fhir.baseUrl } },
      api: { port: 0, auth: { type: 'none' } },
      logging: { level: 'warn' },
    });
    const deadline = Date.now() + 60_000;
    while (!reader.feedStarted()) {
      if (Date.now() > deadline) throw new Error('serve did not start reading the change feed within 60 s');
      await sleep(100);
    }

    log(`freshness: storing ${arrivals.length} studies, half dated today, half 2015–2020`);
    const storedAt = new Map<string, number>();
    const inStore = new Map<string, number>();
    const inFhir = new Map<string, number>();
    let storing = true;
    const watch = (async () => {
      while (storing || inFhir.size < arrivals.length) {
        const now = Date.now();
        for (const uid of storedAt.keys()) if (!inStore.has(uid) && reader.has(uid)) inStore.set(uid, now);
        const inServer = await fhirUids(fhir);
        for (const uid of storedAt.keys()) if (!inFhir.has(uid) && inServer.has(uid)) inFhir.set(uid, now);
        if (!storing && Date.now() - Math.max(...storedAt.values()) > 120_000) throw new Error('studies not synced');
        await sleep(100);
      }
    })();
    for (const study of arrivals) {
      for (const file of studyToDicomFiles(study)) await orthanc.upload(file);
      storedAt.set(study.studyUid, Date.now());
      await sleep(500 + Math.random() * 1000);
    }
    storing = false;
    await watch;

    const secs = (group: SyntheticStudy[], seen: Map<string, number>) =>
      group.map((s) => (seen.get(s.studyUid)! - storedAt.get(s.studyUid)!) / 1000);
    const result = {
      stableAgeSeconds: stableAge,
      feedIntervalSeconds: 2, // changeFeed defaults
      feedBusyIntervalSeconds: 0.5,
      baseStudies: baseCount,
      today: figures(secs(fresh, inStore), secs(fresh, inFhir)),
      oldDated: figures(secs(old, inStore), secs(old, inFhir)),
      idleFeedRequestsPerMinute: 0,
      idleRequestsPerMinute: 0,
      feedRuns: reader.feedRuns(),
    };

    const idleSeconds = opts.idleSeconds ?? 60;
    if (!idleSeconds) return result;
    log(`freshness: ${idleSeconds} s idle`);
    await sleep(15_000); // past the last runs and the feed's busy window (10 s after the last event)
    const before = proxy.requests.length;
    await sleep(idleSeconds * 1000);
    const idle = proxy.requests.slice(before);
    const perMinute = (n: number) => Math.round((n * 600) / idleSeconds) / 10;
    result.idleRequestsPerMinute = perMinute(idle.length);
    result.idleFeedRequestsPerMinute = perMinute(idle.filter((r) => r.path.startsWith('/changes')).length);
    return result;
  } finally {
    serve?.kill('SIGTERM');
    if (serve) await new Promise((r) => serve!.once('exit', r));
    reader.close();
    await proxy.stop();
    await fhir.stop();
    await orthanc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The suite: Orthanc's StableAge at 1 s (with the idle minute) and at 2 s, the feed at its default interval. */
export async function runFreshnessSuite(log: (line: string) => void): Promise<FreshnessResult[]> {
  return [await runFreshness(log, { stableAge: 1 }), await runFreshness(log, { stableAge: 2, idleSeconds: 0 })];
}
