/**
 * The `sync` and `store` configuration sections. Sync settings are global with optional per-source
 * overrides (`sync.sources.<id>`); `syncSettingsFor` merges them into what one source's runs use.
 */
import { z } from 'zod';
import { Cron } from 'croner';

const cronExpression = z.string().refine(
  (expr) => {
    try {
      new Cron(expr, { paused: true }).stop();
      return true;
    } catch {
      return false;
    }
  },
  (expr) => ({ message: `"${expr}" is not a valid cron expression` }),
);

/** A calendar date: YYYY-MM-DD or DICOM's YYYYMMDD. */
export const dateInput = z
  .string()
  .regex(/^(\d{4}-\d{2}-\d{2}|\d{8})$/, 'use YYYY-MM-DD or YYYYMMDD')
  .transform((d) => d.replace(/-/g, ''));

export const deletionActionSchema = z.enum(['ignore', 'entered-in-error', 'delete']);

const syncFields = {
  /** When polls run (croner syntax, seconds optional). */
  cron: cronExpression,
  /** Days before today re-polled every run: instances arrive late and studies change after first seen. */
  lookbackDays: z.number().int().min(0).max(3650),
  /** Where the first poll starts when there is no checkpoint yet; without it, today − lookbackDays. */
  backfillFrom: dateInput.optional(),
  /** StudyDate days per study-level window (the source layer splits further on truncation). */
  windowDays: z.number().int().min(1).max(3660),
  /** Extra QIDO matching keys for every study search, e.g. { "ModalitiesInStudy": "CT" }. */
  filter: z.record(z.string()),
  /** Studies per detail fetch and sink write (the source splits its queries by detailBatchSize). */
  batchSize: z.number().int().min(1).max(1000),
  /** Failed attempts before a study becomes a dead letter. */
  maxAttempts: z.number().int().min(1).max(100),
  /** Retry delay after the first failure, doubled for each further one. */
  backoffBaseSeconds: z.number().min(0),
  backoffMaxSeconds: z.number().min(0),
  /** Re-list studies without StudyDate on every poll. */
  undatedSweep: z.boolean(),
  reconcile: z
    .strictObject({
      /** When the full reconcile runs; off when absent. */
      cron: cronExpression.optional(),
      /** What happens to resources of studies that vanished from the PACS (only those the bridge created). */
      deletion: deletionActionSchema.default('ignore'),
    })
    .default({}),
};

const defaults = {
  cron: '*/5 * * * *',
  lookbackDays: 3,
  windowDays: 7,
  filter: {},
  batchSize: 200,
  maxAttempts: 5,
  backoffBaseSeconds: 60,
  backoffMaxSeconds: 86400,
  undatedSweep: true,
};

const settingsSchema = z.strictObject(syncFields);
export type SyncSettings = z.infer<typeof settingsSchema>;

/** Per-source overrides: any field of the global settings. */
const overrideSchema = settingsSchema.partial().strict();

export const syncSchema = z
  .object({
    cron: syncFields.cron.default(defaults.cron),
    lookbackDays: syncFields.lookbackDays.default(defaults.lookbackDays),
    backfillFrom: syncFields.backfillFrom,
    windowDays: syncFields.windowDays.default(defaults.windowDays),
    filter: syncFields.filter.default(defaults.filter),
    batchSize: syncFields.batchSize.default(defaults.batchSize),
    maxAttempts: syncFields.maxAttempts.default(defaults.maxAttempts),
    backoffBaseSeconds: syncFields.backoffBaseSeconds.default(defaults.backoffBaseSeconds),
    backoffMaxSeconds: syncFields.backoffMaxSeconds.default(defaults.backoffMaxSeconds),
    undatedSweep: syncFields.undatedSweep.default(defaults.undatedSweep),
    reconcile: syncFields.reconcile,
    /** Overrides by source id. */
    sources: z.record(overrideSchema).default({}),
  })
  .strict()
  .default({});

export const storeSchema = z
  .object({
    /** SQLite file of the embedded store (created with its folder when missing). */
    path: z.string().min(1).default('./data/bridge.sqlite'),
  })
  .strict()
  .default({});

export type SyncConfig = z.infer<typeof syncSchema>;
export type SyncConfigInput = z.input<typeof syncSchema>;
export type StoreConfig = z.infer<typeof storeSchema>;
export type DeletionAction = z.infer<typeof deletionActionSchema>;

/** The settings one source's runs use: global values with that source's overrides on top. */
export function syncSettingsFor(sync: SyncConfig, sourceId: string): SyncSettings {
  const { sources, ...global } = sync;
  const own = sources[sourceId] ?? {};
  return {
    ...global,
    ...own,
    reconcile: { ...global.reconcile, ...(own.reconcile ?? {}) },
    filter: own.filter ?? global.filter,
  } as SyncSettings;
}
