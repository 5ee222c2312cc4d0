/**
 * The `sync` configuration section. Sync settings are global with optional per-source
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

const clockTime = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'use HH:MM (24 h)');

/** The full-range sweep's own fields; every one has a default (`sweepDefaults`). */
const sweepFields = {
  /** When the full-range sweep runs (croner syntax), or "off". */
  cron: z.union([cronExpression, z.literal('off')]),
  /** QIDO requests per minute a sweep may make (its pace; polls and lookups are not held back). */
  maxRequestsPerMinute: z.number().min(1).max(100000),
  /** A lower pace during clinical hours, in the source's time zone (from ≤ t < to). */
  clinicalHours: z
    .object({ from: clockTime, to: clockTime, maxRequestsPerMinute: z.number().min(1).max(100000) })
    .strict()
    .optional(),
  /** First StudyDate swept: the sweep covers this through 9999-12-31 and the undated studies. */
  from: z
    .string()
    .regex(/^(\d{4}-\d{2}-\d{2}|\d{8})$/, 'use YYYY-MM-DD or YYYYMMDD')
    .transform((d) => d.replace(/-/g, '')),
  /** The source is flagged when its last complete sweep is older than this (or it has none). */
  maxAgeHours: z.number().min(1),
  /** The source is flagged when fewer than this share of the studies its last sweep listed are synced. */
  minCoverage: z.number().min(0).max(1),
};

const sweepDefaults = {
  cron: '17 1 * * *',
  maxRequestsPerMinute: 120,
  from: '00010101',
  maxAgeHours: 48,
  minCoverage: 0.999,
};

export const sweepSchema = z
  .object({
    cron: sweepFields.cron.default(sweepDefaults.cron),
    maxRequestsPerMinute: sweepFields.maxRequestsPerMinute.default(sweepDefaults.maxRequestsPerMinute),
    clinicalHours: sweepFields.clinicalHours,
    from: sweepFields.from.default(sweepDefaults.from),
    maxAgeHours: sweepFields.maxAgeHours.default(sweepDefaults.maxAgeHours),
    minCoverage: sweepFields.minCoverage.default(sweepDefaults.minCoverage),
  })
  .strict()
  .default({});
export type SweepSettings = z.infer<typeof sweepSchema>;

export const deletionActionSchema = z.enum(['ignore', 'entered-in-error', 'delete']);

/** The most removals one sweep makes on its own (docs/decisions.md: why both, and why these numbers). */
export const MAX_REMOVALS_DEFAULT = { count: 50, share: 0.1 } as const;

const maxRemovalsSchema = z.strictObject({
  count: z.number().int().min(0).default(MAX_REMOVALS_DEFAULT.count),
  share: z.number().min(0).max(1).default(MAX_REMOVALS_DEFAULT.share),
});
export type MaxRemovals = z.infer<typeof maxRemovalsSchema>;

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
  /** The full-range sweep also lists the studies without a StudyDate (polls never do). */
  undatedSweep: z.boolean(),
  /**
   * Listing windows are sized by what the PACS returns, to hold about this many pages of studies
   * (`pageSize`) each; 0 keeps fixed windows of `windowDays`, which otherwise sizes only the first window.
   */
  windowPages: z.number().int().min(0).max(1000),
  sweep: sweepSchema,
  reconcile: z
    .strictObject({
      /** Deprecated: the reconcile is part of the sweep; when set, it is the sweep's schedule. */
      cron: cronExpression.optional(),
      /** What happens to resources of studies that vanished from the PACS (only those the bridge created). */
      deletion: deletionActionSchema.default('ignore'),
      /**
       * A sweep that would remove more than `count` studies, or more than `share` of the source's studies,
       * removes none and is held for a person. No default here: a source's own `reconcile` would otherwise
       * bring the default back over a global setting (see maxRemovalsOf).
       */
      maxRemovals: maxRemovalsSchema.optional(),
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
  windowPages: 10,
};

const settingsSchema = z.strictObject(syncFields);
export type SyncSettings = z.infer<typeof settingsSchema>;

/** Per-source overrides: any field of the global settings; sweep fields one by one. */
const overrideSchema = settingsSchema
  .extend({ sweep: z.object(sweepFields).partial().strict().optional() })
  .partial()
  .strict();

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
    windowPages: syncFields.windowPages.default(defaults.windowPages),
    sweep: sweepSchema,
    reconcile: syncFields.reconcile,
    /** Overrides by source id. */
    sources: z.record(overrideSchema).default({}),
    /** How processes sharing one store (replicas on PostgreSQL) divide the work. */
    coordination: z
      .strictObject({
        /** A run's lease on its source, and a claim on a backfill window, last this long unless renewed. */
        leaseSeconds: z.number().min(2).max(3600).default(60),
        /** How often `serve` looks for backfill windows other processes left to claim. */
        workCheckSeconds: z.number().min(1).max(3600).default(15),
      })
      .default({}),
  })
  .strict()
  .default({});

export type SyncConfig = z.infer<typeof syncSchema>;
export type SyncConfigInput = z.input<typeof syncSchema>;
export type DeletionAction = z.infer<typeof deletionActionSchema>;

/** The settings one source's runs use: global values with that source's overrides on top. */
export function syncSettingsFor(sync: SyncConfig, sourceId: string): SyncSettings {
  const { sources, coordination: _coordination, ...global } = sync;
  const own = sources[sourceId] ?? {};
  return {
    ...global,
    ...own,
    reconcile: { ...global.reconcile, ...(own.reconcile ?? {}) },
    sweep: { ...global.sweep, ...(own.sweep ?? {}) },
    filter: own.filter ?? global.filter,
  } as SyncSettings;
}

/** The removal limit a source's sweeps use: its own or the global `reconcile.maxRemovals`, else the defaults. */
export function maxRemovalsOf(settings: Pick<SyncSettings, 'reconcile'>): MaxRemovals {
  return settings.reconcile.maxRemovals ?? { ...MAX_REMOVALS_DEFAULT };
}

/** The sweep's schedule: the deprecated `reconcile.cron` when set, else `sweep.cron`; undefined when off. */
export function sweepCron(settings: SyncSettings): string | undefined {
  const cron = settings.reconcile.cron ?? settings.sweep.cron;
  return cron === 'off' ? undefined : cron;
}
