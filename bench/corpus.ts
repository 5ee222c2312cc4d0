/**
 * The benchmark corpus: synthetic studies (test/fixtures/synthetic.ts) loaded once into an Orthanc whose
 * storage lives under `.bench/` and is reused by later runs (a marker file records what was loaded).
 * Every study is dated, 25 a day, so the half-size corpus spans half the days.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { corpusCounts, daysOf, generateCorpus, loadStudies, type SyntheticStudy } from '../test/fixtures/synthetic';
import { startOrthanc, type OrthancServer } from '../test/harness/orthanc';

export const BENCH_DIR = path.join(__dirname, '..', '.bench');
const STUDIES_PER_DAY = 25;
const FIRST_DAY = '20230102';
const SEED = 8;

export interface BenchCorpus {
  orthanc: OrthancServer;
  studies: SyntheticStudy[];
  counts: { studies: number; series: number; instances: number };
  /** Inclusive StudyDate range holding every study. */
  from: string;
  to: string;
  /** Seconds spent loading Orthanc in this run (0 when reused). */
  loadSeconds: number;
  /** CPU time Orthanc has used so far (user + system, from /proc): where the PACS's time goes. */
  orthancCpuMs(): number;
  /** Stops Orthanc, keeping its storage for the next run. */
  close(): Promise<void>;
}

/**
 * `spanDays` spreads the studies over that many days instead (the sparse corpus: 2,000 studies over 365
 * days), kept in its own folder.
 */
export async function openCorpus(
  studyCount: number,
  log: (line: string) => void = () => {},
  spanDays?: number,
): Promise<BenchCorpus> {
  const days = daysOf(FIRST_DAY, spanDays ?? Math.ceil(studyCount / STUDIES_PER_DAY));
  const studies = generateCorpus({
    seed: SEED,
    studies: studyCount,
    days: { from: FIRST_DAY, count: days.length },
    undated: 0,
  });
  const counts = corpusCounts(studies);
  const dir = path.join(BENCH_DIR, spanDays ? `corpus-${studyCount}-over-${spanDays}d` : `corpus-${studyCount}`);
  const marker = path.join(dir, 'loaded.json');
  const expected = JSON.stringify({ seed: SEED, ...counts });
  const reuse = existsSync(marker) && readFileSync(marker, 'utf8') === expected;
  if (!reuse) rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const orthanc = await startOrthanc({ storageDir: dir });
  let loadSeconds = 0;
  try {
    if (reuse) {
      const { data } = await orthanc.rest.get<{ CountStudies: number; CountInstances: number }>('/statistics');
      if (data.CountStudies !== counts.studies || data.CountInstances !== counts.instances) {
        throw new Error(
          `${dir} holds ${data.CountStudies} studies / ${data.CountInstances} instances, not the corpus; delete it`,
        );
      }
      log(`corpus of ${counts.studies} studies reused from ${dir}`);
    } else {
      log(`loading ${counts.studies} studies / ${counts.instances} instances into Orthanc (once; kept in ${dir})`);
      const loaded = await loadStudies(orthanc, studies, 8);
      loadSeconds = loaded.elapsedMs / 1000;
      writeFileSync(marker, expected);
    }
  } catch (err) {
    await orthanc.kill();
    throw err;
  }
  return {
    orthanc,
    studies,
    counts,
    from: days[0]!,
    to: days[days.length - 1]!,
    loadSeconds,
    orthancCpuMs: () => cpuMsOf(orthanc.pid()),
    close: () => orthanc.kill(),
  };
}

/** User + system CPU of a process in ms (fields 14 and 15 of /proc/<pid>/stat, in clock ticks of 10 ms). */
function cpuMsOf(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
