/**
 * `discover`: asks each configured PACS which studies it holds in a StudyDate range (plus the
 * undated ones), through the same source layer the sync uses. A first check of a new source.
 */
import { Command } from 'commander';
import { loadConfig } from '../config';
import { createPacsSource } from '../dicomweb';
import { valueOf, readString, readInteger } from '../dicomweb/dicomJson';
import { Tag } from '../dicomweb/tags';

export function discoverCommand(): Command {
  return new Command('discover')
    .description('List the studies each PACS source reports for a StudyDate range, and the undated ones')
    .option('--source <id>', 'only this source')
    .option('--from <YYYYMMDD>', 'first StudyDate', '19000101')
    .option('--to <YYYYMMDD>', 'last StudyDate', new Date().toISOString().slice(0, 10).replace(/-/g, ''))
    .option('--json', 'print one JSON line per study (UIDs and counts only)')
    .action(async (opts: { source?: string; from: string; to: string; json?: boolean }) => {
      const config = loadConfig();
      const sources = config.sources.filter((s) => !opts.source || s.id === opts.source);
      if (!sources.length) throw new Error(`no source with id "${opts.source}"`);
      for (const cfg of sources) {
        const pacs = createPacsSource(cfg);
        const dated = await pacs.findStudies({ from: opts.from, to: opts.to });
        const undated = await pacs.findUndatedStudies();
        for (const study of [...dated, ...undated]) {
          const row = {
            source: cfg.id,
            studyUid: valueOf(readString(study, Tag.StudyInstanceUID)),
            studyDate: valueOf(readString(study, Tag.StudyDate)) ?? null,
            series: valueOf(readInteger(study, Tag.NumberOfStudyRelatedSeries)) ?? null,
            instances: valueOf(readInteger(study, Tag.NumberOfStudyRelatedInstances)) ?? null,
          };
          if (opts.json) process.stdout.write(`${JSON.stringify(row)}\n`);
        }
        const r = pacs.stats.requests;
        // A malformed StudyDate can put a study in both lists; the total counts it once.
        const distinct = new Set([...dated, ...undated].map((d) => valueOf(readString(d, Tag.StudyInstanceUID)))).size;
        process.stdout.write(
          `${cfg.id}: ${distinct} studies — ${dated.length} dated (${opts.from}–${opts.to}), ${undated.length} undated; ` +
            `${r.studies} study-level QIDO requests, ${pacs.stats.splits} window splits\n`,
        );
      }
    });
}
