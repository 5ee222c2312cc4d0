/**
 * The DICOMweb source layer's front door: other code creates sources here and never sees
 * dicomweb-client, xhr2, paging or retries.
 */
import type { SourceConfig } from '../config';
import { DicomwebSource, type SourceOptions } from './source';
import type { PacsSource } from './types';

export function createPacsSource(cfg: SourceConfig, options: SourceOptions = {}): PacsSource {
  return new DicomwebSource(cfg, options);
}

export type { SourceOptions } from './source';
export type { SourceLogger } from './queryContext';
export * from './types';
export * from './includeFields';
export { inexactReason } from './queryEncoding';
export { truncationOf } from './truncation';
export { AdaptiveWindows, FixedWindows, uidBatches, type WindowPlanner } from './windows';
export type { ChangeFeed, FeedEvent, FeedPage } from './changeFeed';
export { createChangeFeed } from './changeFeeds';
