/** Builds the one StudyLookup of the configured mode (see studies.ts for the parts). */
import { silentLogger } from '../../log';
import { CachedLookup } from './cachedLookup';
import { LiveLookup } from './liveLookup';
import { StoreLookup } from './storeLookup';
import type { LookupDeps, StudyLookup } from './studies';

/**
 * The lookup for the configured mode: live behind its cache; in store mode the store, falling back to
 * the cached live lookup for named studies it does not hold (`api.storeFallback`).
 */
export function createStudyLookup(deps: LookupDeps): StudyLookup {
  const { config, sources, store } = deps;
  const log = deps.logger ?? silentLogger;
  const live = () => new CachedLookup(new LiveLookup(config, sources, log), config.cache, config.mode === 'live');
  if (config.mode === 'live') return live();
  if (!store) throw new Error('api.mode is "store" but no store was given');
  return new StoreLookup(config, sources, store, config.storeFallback ? live() : undefined);
}
