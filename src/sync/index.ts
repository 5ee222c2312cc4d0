export { createSyncService, type SyncServiceOptions } from './service';
export type { SyncService, RunSummary, BackfillProgress, StudyMapper } from './types';
export {
  syncSchema,
  syncSettingsFor,
  type SyncConfig,
  type SyncConfigInput,
  type SyncSettings,
  type DeletionAction,
  type SweepSettings,
} from './config';
export { SinkUnavailableError, SourceBusyError, SourceUnavailableError } from './errors';
export { sourceCoverage, type Coverage, type CoverageHealth, type CoverageStore } from './sweepCoverage';
