/**
 * `discover`: asks each configured PACS which studies it holds in a StudyDate range (plus the
 * undated ones), through the same source layer the sync uses, and lists each study once. A first
 * check of a new source.
 */
import { Command } from 'commander';
import { loadConfig } from '../config';
import { createPacsSource } from '../dicomweb';
import { valueOf, readString, readInteger, studyUidOf, type DicomDataset, Tag } from '../dicom';
import { checkRange, dateArgument, selectSources } from './runtime';

export interface DiscoveredStudy {
  source: string;
  studyUid: string;
  studyDate: string | null;
  /** Found by the date-range search (true) or only by the undated sweep (false). */
  dated: boolean;
  series: number | null;
  instances: number | null;
}

/**
 * The studies of both searches, each once. A StudyDate a range search matches but the undated sweep
 * also keeps (the ACR-NEMA "1997.04.24") comes back from both: it counts as dated.
 */
export function discoveredStudies(source: string, dated: DicomDataset[], undated: DicomDataset[]): DiscoveredStudy[] {
  const rows = new Map<string, DiscoveredStudy>();
  const add = (study: DicomDataset, isDated: boolean) => {
    const studyUid = studyUidOf(study);
    if (!studyUid || rows.has(studyUid)) return;
    rows.set(studyUid, {
      source,
      studyUid,
      studyDate: valueOf(readString(study, Tag.StudyDate)) ?? null,
      dated: isDated,
      series: valueOf(readInteger(study, Tag.NumberOfStudyRelatedSeries)) ?? null,
      instances: valueOf(readInteger(study, Tag.NumberOfStudyRelatedInstances)) ?? null,
    });
  };
  for (const study of dated) add(study, true);
  for (const study of undated) add(study, false);
  return [...rows.values()];
}

function studyLine(s: DiscoveredStudy): string {
  const date = s.studyDate ?? 'no date';
  return `  ${s.studyUid}  ${s.dated ? date : `undated (${date})`}  ${s.series ?? '?'} series, ${s.instances ?? '?'} instances\n`;
}

export function discoverCommand(): Command {
  return new Command('discover')
    .description('List the studies each PACS source reports for a StudyDate range, and the undated ones')
    .option('--source <id>', 'only this source')
    .option('--from <date>', 'first StudyDate (YYYY-MM-DD or YYYYMMDD)', dateArgument, '19000101')
    .option(
      '--to <date>',
      'last StudyDate (YYYY-MM-DD or YYYYMMDD)',
      dateArgument,
      new Date().toISOString().slice(0, 10).replace(/-/g, ''),
    )
    .option('--json', 'print one JSON line per study (UIDs and counts only); the summary goes to stderr')
    .action(async (opts: { source?: string; from: string; to: string; json?: boolean }) => {
      checkRange(opts.from, opts.to);
      const config = loadConfig();
      const ids = selectSources(config, opts.source);
      for (const cfg of config.sources.filter((s) => ids.includes(s.id))) {
        const pacs = createPacsSource(cfg);
        const dated = await pacs.findStudies({ from: opts.from, to: opts.to });
        const undated = await pacs.findUndatedStudies();
        const studies = discoveredStudies(cfg.id, dated, undated);
        if (!opts.json) process.stdout.write(`${cfg.id}\n`);
        for (const s of studies) process.stdout.write(opts.json ? `${JSON.stringify(s)}\n` : studyLine(s));
        const datedCount = studies.filter((s) => s.dated).length;
        const r = pacs.stats.requests;
        // With --json the summary stays off stdout, which carries only the JSON lines.
        (opts.json ? process.stderr : process.stdout).write(
          `${cfg.id}: ${studies.length} studies — ${datedCount} dated (${opts.from}–${opts.to}), ` +
            `${studies.length - datedCount} undated; ${r.studies} study-level QIDO requests, ${pacs.stats.splits} window splits\n`,
        );
      }
    });
}
