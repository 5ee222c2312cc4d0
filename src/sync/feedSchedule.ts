/**
 * The change-feed scheduler of a sync service (kept apart from service.ts): one feed loop per source
 * whose `changeFeed` is not off, syncing through the service's `feed` runs.
 */
import type { Logger } from 'pino';
import type { SourceConfig } from '../config';
import { createChangeFeed } from '../dicomweb';
import type { StateStore } from '../state';
import { createFeedScheduler, type FeedScheduler } from './feed';
import type { FeedRunner } from './types';

export type { FeedScheduler } from './feed';

export function feedSchedulerFor(
  service: FeedRunner,
  opts: { sources: SourceConfig[]; store: StateStore; log: Logger; now: () => Date },
): FeedScheduler {
  return createFeedScheduler({
    sources: opts.sources.map((cfg) => ({
      sourceId: cfg.id,
      config: cfg.changeFeed,
      resolveFeed: () => createChangeFeed(cfg),
    })),
    state: opts.store.feed,
    syncStudyUids: (sourceId, uids) => service.syncStudyUids(sourceId, uids),
    log: opts.log,
    now: opts.now,
    // The feed went back: a sweep at once (one already going finishes; the request stays until one completes).
    onSweepNeeded: (sourceId) =>
      void service
        .sweep(sourceId)
        .catch((err) => opts.log.info({ source: sourceId, err: String(err) }, 'requested sweep not started')),
  });
}
