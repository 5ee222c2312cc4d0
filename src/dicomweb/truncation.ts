/**
 * How a study whose details the PACS truncated is described to operators: the `truncated-by-pacs` reason, what
 * was listed against what the study row says it holds, and what to change. UIDs and counts only, never PHI.
 */
import { readInteger, valueOf, type DicomDataset, Tag } from '../dicom';
import { TRUNCATED_BY_PACS, type StudyDetails } from './types';

/** The failure text for a study whose details are incomplete (starts with the reason), or undefined when complete. */
export function truncationOf(details: StudyDetails, study: DicomDataset): string | undefined {
  const levels = details.truncated ?? [];
  if (!levels.length) return undefined;
  const of = (listed: number, tag: string) => {
    const total = valueOf(readInteger(study, tag));
    return total === undefined ? `${listed}` : `${listed} of ${total}`;
  };
  const counts = levels.map((level) =>
    level === 'series'
      ? `${of(details.series.length, Tag.NumberOfStudyRelatedSeries)} series`
      : `${of(details.instances.length, Tag.NumberOfStudyRelatedInstances)} instances`,
  );
  return (
    `${TRUNCATED_BY_PACS}: the PACS still truncates this study's ${levels.join(' and ')} search at the finest ` +
    `split (${counts.join(', ')} listed); raise the PACS's own limit (Orthanc: LimitFindResults, ` +
    `LimitFindInstances) or check the source's serverLimit`
  );
}
