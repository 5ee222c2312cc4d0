/**
 * The change feed for a source: the factory over the feed types (Orthanc's /changes today) and the
 * `auto` probe. The interface every feed implements is in changeFeed.ts; a new feed type is built here.
 */
import type { SourceConfig } from '../config';
import { createAuthorizer } from './auth';
import type { ChangeFeed, FeedSourceConfig } from './changeFeed';
import { OrthancChangeFeed } from './changeFeedOrthanc';
import { pacsRetryPolicy, type PacsRetryTuning } from './retry';
import { httpsAgentFor } from './transport';
import type { PacsError } from './types';

export interface ChangeFeedOptions {
  /** Backoff tuning (tests shorten it); attempts come from the source's `retries`, as for its QIDO-RS requests. */
  retry?: PacsRetryTuning;
  onRetry?: (error: PacsError, attempt: number, delayMs: number) => void;
}

/**
 * The change feed a source is configured for, or the one detected (`auto`: Orthanc's, when GET
 * <REST root>/system answers as Orthanc). Undefined for `off`, or when none is detected.
 */
export async function createChangeFeed(
  cfg: FeedSourceConfig,
  options: ChangeFeedOptions = {},
): Promise<ChangeFeed | undefined> {
  const type = cfg.changeFeed.type;
  if (type === 'off') return undefined;
  const httpsAgent = httpsAgentFor(cfg as SourceConfig);
  const auth = createAuthorizer(cfg.auth, { sourceId: cfg.id, timeoutMs: cfg.timeoutMs, httpsAgent });
  const retry = pacsRetryPolicy(cfg.retries, options.retry);
  const feed = new OrthancChangeFeed(cfg, { auth, httpsAgent, retry, onRetry: options.onRetry });
  if (type === 'orthanc') return feed;
  return (await feed.probeSystem()) ? feed : undefined;
}
