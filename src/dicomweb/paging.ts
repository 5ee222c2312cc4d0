/**
 * Limit/offset paging that never silently loses a result. A search counts as truncated when the server
 * says so (Warning: 299, 206, 413), when it ignores `offset` (a page of rows already seen: what follows is
 * out of reach), or when it ends at the server's cap: the configured `serverLimit` (or one more), or a count
 * that came with a truncation signal before ("observed cap"). A page that fills is always followed by the
 * next offset, past `serverLimit` too: a PACS capping each page (Azure's 200) goes on answering, and once it
 * has, the cap is known not to end its searches at that level. Orthanc's LimitFindResults caps the whole
 * search, offset included, and returns one more than the cap without saying anything, so a search ending
 * at `serverLimit` or `serverLimit + 1` rows is taken as truncated. Callers split what was truncated
 * (narrower date/time windows, smaller UID batches, one series at a time).
 */
import type { DicomDataset } from '../dicom';
import { PacsError } from './types';

export interface PageAnswer {
  datasets: DicomDataset[];
  truncated: boolean;
}

/** Fetches one page of a search with these limit/offset values. */
export type PageFetcher = (limit: number, offset: number) => Promise<PageAnswer>;

/** What is known about the server's cap on results, shared by the searches of one source at one QIDO level. */
export interface CapMemory {
  serverLimit?: number;
  observedCap?: number;
  /** A search at this level went on past `serverLimit` rows: the limit caps pages, not whole searches. */
  pagesPastLimit?: boolean;
}

export interface PagedResult {
  datasets: DicomDataset[];
  /** Results may be missing: narrow the search and ask again. */
  truncated: boolean;
}

/**
 * Whether a search that ended after `total` rows may have been cut short by a cap on the whole search: it
 * ended at `serverLimit` or one past it (Orthanc), unless this level has been seen to page past the limit.
 * Past `serverLimit + 1` rows the level is remembered as one that pages.
 */
export function endsAtCap(caps: CapMemory, total: number): boolean {
  const limit = caps.serverLimit;
  if (limit === undefined) return false;
  if (total > limit + 1) caps.pagesPastLimit = true;
  return !caps.pagesPastLimit && total >= limit && total <= limit + 1;
}

export async function pageThrough(
  fetchPage: PageFetcher,
  pageSize: number,
  caps: CapMemory,
  keyOf: (ds: DicomDataset) => string | undefined,
): Promise<PagedResult> {
  const limit = Math.max(1, Math.min(pageSize, caps.serverLimit ?? Infinity));
  const datasets: DicomDataset[] = [];
  const seen = new Set<string>();
  for (let offset = 0; ;) {
    let page: PageAnswer;
    try {
      page = await fetchPage(limit, offset);
    } catch (e) {
      // 413 Payload Too Large: the server will not answer this search whole.
      if (e instanceof PacsError && e.status === 413) return { datasets, truncated: true };
      throw e;
    }
    const n = page.datasets.length;
    if (page.truncated) {
      if (n > 0) caps.observedCap = Math.min(caps.observedCap ?? Infinity, offset + n);
      datasets.push(...page.datasets);
      return { datasets, truncated: true };
    }
    const fresh = addFresh(page.datasets, datasets, seen, keyOf);
    const total = offset + n;
    if (caps.observedCap !== undefined && n > 0 && (n === caps.observedCap || total === caps.observedCap)) {
      return { datasets, truncated: true };
    }
    // More rows than asked for: the server ignores limit (and offset) and this is its whole answer.
    if (n > limit) return { datasets, truncated: endsAtCap(caps, datasets.length) };
    // Rows, none of them new: the server ignores offset, so the rows after the first page are out of reach.
    if (n > 0 && fresh === 0) return { datasets, truncated: true };
    if (n < limit) return { datasets, truncated: endsAtCap(caps, total) };
    offset += n;
  }
}

/** Appends the rows not seen before (by key; keyless rows always), returning how many. */
function addFresh(
  rows: DicomDataset[],
  into: DicomDataset[],
  seen: Set<string>,
  keyOf: (ds: DicomDataset) => string | undefined,
): number {
  let fresh = 0;
  for (const ds of rows) {
    const key = keyOf(ds);
    if (key !== undefined && seen.has(key)) continue;
    if (key !== undefined) seen.add(key);
    into.push(ds);
    fresh++;
  }
  return fresh;
}

/** Keeps the first dataset per key; datasets without a key are all kept. */
export function dedupe(datasets: DicomDataset[], keyOf: (ds: DicomDataset) => string | undefined): DicomDataset[] {
  const byKey = new Map<string, DicomDataset>();
  const keyless: DicomDataset[] = [];
  for (const ds of datasets) {
    const key = keyOf(ds);
    if (key === undefined) keyless.push(ds);
    else if (!byKey.has(key)) byKey.set(key, ds);
  }
  return [...byKey.values(), ...keyless];
}

/** Fetches one page asking for these attributes (`includefield`; none: the server's default attributes). */
export type FieldsFetcher = (limit: number, offset: number, fields: readonly string[]) => Promise<PageAnswer>;

/** What a row refused for some of its attributes was fetched without, told once per row. */
export type OnDropped = (datasets: DicomDataset[], dropped: readonly string[]) => void;

const isRefusal = (e: unknown) => e instanceof PacsError && e.kind === 'http' && (e.status === 400 || e.status === 500);

/**
 * One unreadable attribute must cost neither a page nor the row's other attributes: Orthanc answers 400 to a
 * whole page when one of its rows cannot render one includefield (0008,0005 of an ISO 2022 study). A refused
 * page is fetched in halves down to the row; for the row, those of the attributes this source refused before
 * (`refused`, shared by the source's searches) that it refuses too are left out first; if it is still refused the
 * field list is bisected to the attributes the server refuses alone. Those are added to `refused` and the row is
 * fetched without them; only if that fails too is the row fetched with the default attributes.
 */
export function isolatingBadRows(
  fetch: FieldsFetcher,
  fields: readonly string[],
  refused: Set<string>,
  onDropped: OnDropped,
): PageFetcher {
  const get = async (limit: number, offset: number): Promise<PageAnswer> => {
    try {
      return await fetch(limit, offset, fields);
    } catch (e) {
      if (!isRefusal(e)) throw e;
      if (limit === 1) return fetchRow({ fetch, fields, refused, onDropped }, offset);
      const half = Math.ceil(limit / 2);
      const first = await get(half, offset);
      if (first.datasets.length < half || first.truncated) return first;
      const second = await get(limit - half, offset + half);
      return { datasets: [...first.datasets, ...second.datasets], truncated: second.truncated };
    }
  };
  return get;
}

interface RowIsolation {
  fetch: FieldsFetcher;
  fields: readonly string[];
  refused: Set<string>;
  onDropped: OnDropped;
}

/** A row answered without some attributes, and which. */
interface RowAnswer {
  answer: PageAnswer;
  without: readonly string[];
}

/** One refused row: without its known suspects, else without what it refuses alone, else with default attributes. */
async function fetchRow(iso: RowIsolation, offset: number): Promise<PageAnswer> {
  const partial = (await withoutSuspects(iso, offset)) ?? (await withoutRefused(iso, offset));
  const { answer, without } = partial ?? { answer: await iso.fetch(1, offset, []), without: [...iso.fields] };
  if (answer.datasets.length) iso.onDropped(answer.datasets, without);
  return answer;
}

/** Suspects first: the attributes this source refused before that this row refuses too. */
async function withoutSuspects(iso: RowIsolation, offset: number): Promise<RowAnswer | undefined> {
  const known = iso.fields.filter((f) => iso.refused.has(f));
  const without = known.length > 1 ? await refusedAmong(iso.fetch, offset, known) : known;
  return without.length ? answeredWithout(iso, offset, without) : undefined;
}

/** The attributes the row refuses on their own, found by bisecting all of them (and remembered for the source). */
async function withoutRefused(iso: RowIsolation, offset: number): Promise<RowAnswer | undefined> {
  const found = await refusedAmong(iso.fetch, offset, iso.fields);
  for (const f of found) iso.refused.add(f);
  return found.length ? answeredWithout(iso, offset, found) : undefined;
}

async function answeredWithout(iso: RowIsolation, offset: number, without: string[]): Promise<RowAnswer | undefined> {
  const answer = await attemptRow(
    iso.fetch,
    offset,
    iso.fields.filter((f) => !without.includes(f)),
  );
  return answer && { answer, without };
}

/** The row with these attributes, or undefined when the server refuses it. */
async function attemptRow(
  fetch: FieldsFetcher,
  offset: number,
  subset: readonly string[],
): Promise<PageAnswer | undefined> {
  try {
    return await fetch(1, offset, subset);
  } catch (e) {
    if (!isRefusal(e)) throw e;
    return undefined;
  }
}

/** The attributes of `subset` (which the server refuses for this row) that it refuses on their own. */
async function refusedAmong(fetch: FieldsFetcher, offset: number, subset: readonly string[]): Promise<string[]> {
  if (subset.length === 1) return [...subset];
  const half = Math.ceil(subset.length / 2);
  const out: string[] = [];
  for (const part of [subset.slice(0, half), subset.slice(half)])
    if (!(await attemptRow(fetch, offset, part))) out.push(...(await refusedAmong(fetch, offset, part)));
  return out;
}
