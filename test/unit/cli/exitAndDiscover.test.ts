/**
 * Pure parts of the executable: run statuses to exit codes, discover's one-line-per-study list, date arguments.
 */
import { InvalidArgumentError } from 'commander';
import { discoveredStudies } from '../../../src/cli/discover';
import { EXIT, EXIT_CODE_HELP, exitCodeForRun, UsageError, worstExit } from '../../../src/cli/exitCodes';
import { checkRange, dateArgument } from '../../../src/cli/runtime';
import { Tag } from '../../../src/dicom/tags';
import type { DicomDataset } from '../../../src/dicom/dicomJson';

test('run statuses map to the table; any other non-ok status (e.g. a sink outage) is a failed run', () => {
  expect(exitCodeForRun('ok')).toBe(0);
  expect(exitCodeForRun('partial')).toBe(3);
  expect(exitCodeForRun('failed')).toBe(1);
  expect(exitCodeForRun('interrupted')).toBe(130);
  expect(exitCodeForRun('sink-unavailable')).toBe(1);
  expect(worstExit([])).toBe(0);
  expect(worstExit([EXIT.ok, EXIT.partial, EXIT.ok])).toBe(EXIT.partial);
  expect(worstExit([EXIT.partial, EXIT.failed])).toBe(EXIT.failed);
  expect(worstExit([EXIT.failed, EXIT.interrupted, EXIT.partial])).toBe(EXIT.interrupted);
});

test('the --help table lists every exit code, each once', () => {
  const listed = [...EXIT_CODE_HELP.matchAll(/^ {2}(\d+) /gm)].map((m) => Number(m[1]));
  expect(listed).toEqual(Object.values(EXIT));
});

const study = (uid: string, date?: string): DicomDataset => ({
  [Tag.StudyInstanceUID]: { vr: 'UI', Value: [uid] },
  ...(date ? { [Tag.StudyDate]: { vr: 'DA', Value: [date] } } : {}),
  [Tag.NumberOfStudyRelatedSeries]: { vr: 'IS', Value: [2] },
  [Tag.NumberOfStudyRelatedInstances]: { vr: 'IS', Value: [5] },
});

test('discover lists each study once: an ACR-NEMA date found by both searches counts as dated', () => {
  const dated = [study('1.1', '20240101'), study('1.2', '1997.04.24'), study('1.1', '20240101')];
  const undated = [study('1.2', '1997.04.24'), study('1.3')];
  const rows = discoveredStudies('pacs', dated, undated);
  expect(rows).toEqual([
    { source: 'pacs', studyUid: '1.1', studyDate: '20240101', dated: true, series: 2, instances: 5 },
    { source: 'pacs', studyUid: '1.2', studyDate: '1997.04.24', dated: true, series: 2, instances: 5 },
    { source: 'pacs', studyUid: '1.3', studyDate: null, dated: false, series: 2, instances: 5 },
  ]);
});

test('dates on the command line: YYYY-MM-DD or YYYYMMDD, real days, in order; else a usage error', () => {
  expect(dateArgument('2023-03-01')).toBe('20230301');
  expect(dateArgument('20240229')).toBe('20240229');
  for (const bad of ['2023-13-01', '20230230', '2023.03.01', '1.3.2023', 'yesterday'])
    expect(() => dateArgument(bad)).toThrow(InvalidArgumentError);
  expect(() => checkRange('20230301', '20230301')).not.toThrow();
  expect(() => checkRange('20230302', '20230301')).toThrow(UsageError);
});
