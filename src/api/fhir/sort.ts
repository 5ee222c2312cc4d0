/**
 * `_sort` on ImagingStudy searches: the keys (started, _lastUpdated, each ascending or with "-"
 * descending, several separated by commas), the total order they give, and the keyset position a
 * sorted page's links carry. Pure.
 *
 * Order: the keys in turn, studies without a value last in either direction, then the id (ascending),
 * then the order the lookup gave for the same study listed twice. A position is the sort values and id of
 * the last study a page showed; the next page starts after it, so studies added, changed or removed
 * between pages neither repeat nor hide the others.
 */
import type { ImagingStudy } from 'fhir/r4';
import { startedSortValue } from './dates';
import { badRequest, FhirError } from './outcome';

export const SORT_FIELDS = ['started', '_lastUpdated'] as const;
export type SortField = (typeof SORT_FIELDS)[number];

export interface SortKey {
  field: SortField;
  descending: boolean;
}

/** Where a study stands in a sorted result: its sort values (ms; null when it has none), id, and rank among equals. */
export interface SortPosition {
  values: (number | null)[];
  id: string;
  /** 0 for the first of several results with the same values and id (one study listed by two sources). */
  n: number;
}

export const LIVE_LAST_UPDATED =
  'the PACS keeps no last-updated time for a study (it is known only in store mode, from the stored resource)';

/** `_sort=-started,_lastUpdated` → keys; unknown or repeated keys are refused, as is _lastUpdated in live mode. */
export function parseSort(name: string, value: string, live: boolean): SortKey[] {
  const keys: SortKey[] = [];
  for (const item of value.split(',')) {
    const descending = item.startsWith('-');
    const field = descending ? item.slice(1) : item;
    if (!(SORT_FIELDS as readonly string[]).includes(field))
      throw badRequest(
        `_sort: "${item}" is not a sort key of this server (supported: ${sortKeyNames(live).join(', ')}).`,
        name,
      );
    if (field === '_lastUpdated' && live)
      throw new FhirError(
        400,
        'not-supported',
        `_sort: "${item}" is not supported in live mode: ${LIVE_LAST_UPDATED}.`,
        name,
      );
    if (keys.some((k) => k.field === field)) throw badRequest(`_sort names "${field}" twice.`, name);
    keys.push({ field: field as SortField, descending });
  }
  return keys;
}

export function sortKeyNames(live: boolean): string[] {
  return SORT_FIELDS.filter((f) => !live || f !== '_lastUpdated').flatMap((f) => [f, `-${f}`]);
}

/** What sorting reads of a found study (studies.ts's FoundStudy): its `started`, and when the store last wrote it. */
export interface SortableStudy {
  resource: Pick<ImagingStudy, 'started'>;
  lastUpdated?: string;
}

/** A found study's sort values; `zone` reads a `started` without offset (the source's zone). */
export function sortValues(found: SortableStudy, keys: SortKey[], zone: string): (number | null)[] {
  return keys.map((k) => {
    const v =
      k.field === 'started'
        ? startedSortValue(found.resource.started, zone)
        : found.lastUpdated === undefined
          ? NaN
          : Date.parse(found.lastUpdated);
    return v === undefined || Number.isNaN(v) ? null : v;
  });
}

export function comparePositions(a: SortPosition, b: SortPosition, keys: SortKey[]): number {
  for (let i = 0; i < keys.length; i++) {
    const x = a.values[i];
    const y = b.values[i];
    if (x === y) continue;
    if (x === null) return 1;
    if (y === null) return -1;
    return keys[i].descending ? y - x : x - y;
  }
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return a.n - b.n;
}

// ── the position in links: "s_<value>[_<value>]_<n>_<id>", a value "n" when absent ──────────

export const SORT_CURSOR_RE = /^s(?:_(?:-?\d{1,16}|n)){1,2}_\d{1,3}_\d[0-9.]{0,63}$/;

export function encodeSortCursor(p: SortPosition): string {
  return ['s', ...p.values.map((v) => (v === null ? 'n' : String(v))), p.n, p.id].join('_');
}

export function decodeSortCursor(raw: string, keys: SortKey[]): SortPosition {
  const parts = raw.split('_');
  if (!SORT_CURSOR_RE.test(raw) || parts.length !== keys.length + 3)
    throw badRequest('_cursor is not a paging position this server gave out for this _sort.', '_cursor');
  const values = parts.slice(1, 1 + keys.length).map((v) => (v === 'n' ? null : Number(v)));
  if (values.some((v) => v !== null && !Number.isSafeInteger(v)))
    throw badRequest('_cursor is not a paging position this server gave out.', '_cursor');
  return { values, n: Number(parts[keys.length + 1]), id: parts[keys.length + 2] };
}
