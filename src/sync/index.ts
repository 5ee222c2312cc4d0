export {
  createSyncService,
  type SyncService,
  type SyncServiceOptions,
  type RunSummary,
  type BackfillProgress,
} from './service';
export {
  syncSchema,
  syncSettingsFor,
  type SyncConfig,
  type SyncConfigInput,
  type SyncSettings,
  type DeletionAction,
  type SweepSettings,
} from './config';
export type { StudyMapper } from './run';
export { SinkUnavailableError, SourceBusyError, SourceUnavailableError } from './errors';
export { sourceCoverage, type Coverage, type CoverageHealth, type CoverageStore } from './sweepCoverage';
