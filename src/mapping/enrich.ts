/**
 * WADO-RS metadata enrichment: one instance's full header fills the attributes the mapper reads that the
 * QIDO-RS rows left out (the table's `enrich` entries: sequences and physician names many QIDO servers,
 * Orthanc among them, never return). What QIDO-RS did return always wins. Pure.
 */
import {
  rawValues,
  readString,
  valueOf,
  type DicomDataset,
  Tag,
  enrichableAttributesOf,
  type AttributeLevel,
} from '../dicom';
import type { StudyResults } from './types';

/** `row` with each enrichable attribute of `level` it lacks taken from `metadata`; the row itself when none. */
function fill(row: DicomDataset, metadata: DicomDataset, level: AttributeLevel): DicomDataset {
  const added: DicomDataset = {};
  for (const tag of enrichableAttributesOf(level)) {
    if (rawValues(row, tag).kind !== 'missing' && rawValues(row, tag).kind !== 'empty') continue;
    if (rawValues(metadata, tag).kind === 'value') added[tag] = metadata[tag]!;
  }
  return Object.keys(added).length ? { ...row, ...added } : row;
}

export function withMetadata(results: StudyResults): StudyResults {
  const metadata = results && typeof results === 'object' ? results.metadata : undefined;
  if (!metadata || typeof metadata !== 'object' || !results.study || typeof results.study !== 'object') return results;
  // Series attributes in one instance's header belong to that instance's series only.
  const seriesUid = valueOf(readString(metadata, Tag.SeriesInstanceUID));
  const series = Array.isArray(results.series)
    ? results.series.map((s) =>
        seriesUid && valueOf(readString(s, Tag.SeriesInstanceUID)) === seriesUid ? fill(s, metadata, 'series') : s,
      )
    : results.series;
  return { ...results, study: fill(results.study, metadata, 'study'), series };
}
