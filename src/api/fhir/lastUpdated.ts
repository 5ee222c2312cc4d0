/**
 * `_lastUpdated` (store mode): a FHIR date search on the stored resource's meta.lastUpdated, an instant
 * the store writes in UTC. All nine prefixes; a value without an offset is read in UTC, the zone the
 * store writes. Parsing, matching and the store's push-down bounds share one [start, end) range. Pure.
 */
import { instantRange, parseDateValue } from './dates';

export const LAST_UPDATED_PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'] as const;
export type LastUpdatedPrefix = (typeof LAST_UPDATED_PREFIXES)[number];

export interface LastUpdatedValue {
  prefix: LastUpdatedPrefix;
  /** The instants the value covers at its precision: [start, end) in ms. */
  start: number;
  end: number;
  /** `ap` only: how far either side of [start, end) still counts, fixed when parsed. */
  margin?: number;
}

const DAY_MS = 86_400_000;

/**
 * Parses one `_lastUpdated` value; returns an error message for the client when it is not acceptable.
 * `ap` widens the value by a tenth of its distance from now (the spec's suggestion).
 */
export function parseLastUpdated(raw: string, now = Date.now()): LastUpdatedValue | string {
  const m = /^(eq|ne|gt|lt|ge|le|sa|eb|ap)?(.*)$/.exec(raw)!;
  const prefix = (m[1] ?? 'eq') as LastUpdatedPrefix;
  // The date grammar is started's; only the prefixes differ.
  const v = parseDateValue(`eq${m[2]}`);
  if (typeof v === 'string') return v;
  const range = v.time
    ? instantRange(v.time, 'UTC')
    : { start: Date.parse(`${v.days!.first}T00:00:00Z`), end: Date.parse(`${v.days!.last}T00:00:00Z`) + DAY_MS };
  if (prefix !== 'ap') return { prefix, ...range };
  const margin = Math.max(Math.abs(now - range.start), Math.abs(now - range.end)) / 10;
  return { prefix, ...range, margin: Math.round(margin) };
}

/** The [from, to) instants a value admits; `ne` admits two ranges, so it has none here (undefined). */
export function lastUpdatedBounds(v: LastUpdatedValue): { from?: number; to?: number } | undefined {
  switch (v.prefix) {
    case 'eq':
      return { from: v.start, to: v.end };
    case 'ne':
      return undefined;
    case 'gt':
    case 'sa': // an instant starts after the value exactly when it lies above it
      return { from: v.end };
    case 'lt':
    case 'eb':
      return { to: v.start };
    case 'ge':
      return { from: v.start };
    case 'le':
      return { to: v.end };
    case 'ap':
      return { from: v.start - (v.margin ?? 0), to: v.end + (v.margin ?? 0) };
  }
}

/** Whether a resource's meta.lastUpdated satisfies one value; a resource without one matches nothing. */
export function lastUpdatedMatches(lastUpdated: string | undefined, v: LastUpdatedValue): boolean {
  const t = lastUpdated === undefined ? NaN : Date.parse(lastUpdated);
  if (Number.isNaN(t)) return false;
  if (v.prefix === 'ne') return t < v.start || t >= v.end;
  const b = lastUpdatedBounds(v)!;
  return (b.from === undefined || t >= b.from) && (b.to === undefined || t < b.to);
}
