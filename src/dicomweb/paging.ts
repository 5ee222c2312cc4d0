/**
 * Limit/offset paging that never silently loses a result. A search counts as truncated when the
 * server says so (Warning: 299, 206, 413), or when its answers reach the server's cap: the
 * configured `serverLimit`, or a count that came with a truncation signal before ("observed cap").
 * Orthanc's LimitFindResults caps the whole search, offset included, and returns one more than the
 * cap without saying anything, so only the configured limit catches it. Callers split what was
 * truncated (narrower date/time windows, smaller UID batches).
 */
import type { DicomDataset } from './dicomJson';
import { PacsError } from './types';

export interface PageAnswer {
  datasets: DicomDataset[];
  truncated: boolean;
}

/** Fetches one page of a search with these limit/offset values. */
export type PageFetcher = (limit: number, offset: number) => Promise<PageAnswer>;

/** What is known about the server's cap on results, shared by all searches of a source. */
export interface CapMemory {
  serverLimit?: number;
  observedCap?: number;
}

export interface PagedResult {
  datasets: DicomDataset[];
  /** Results may be missing: narrow the search and ask again. */
  truncated: boolean;
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
  let offset = 0;
  for (;;) {
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
    let fresh = 0;
    for (const ds of page.datasets) {
      const key = keyOf(ds);
      if (key !== undefined && seen.has(key)) continue;
      if (key !== undefined) seen.add(key);
      datasets.push(ds);
      fresh++;
    }
    const total = offset + n;
    if (caps.serverLimit !== undefined && total >= caps.serverLimit) return { datasets, truncated: true };
    if (caps.observedCap !== undefined && n > 0 && (n === caps.observedCap || total === caps.observedCap)) {
      return { datasets, truncated: true };
    }
    // A short page is the last one. A page of nothing new means the server ignores offset.
    if (n < limit || fresh === 0) return { datasets, truncated: false };
    offset += n;
  }
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

/** Fetches one page, with the full field list or (reduced) the server's default attributes only. */
export type FieldsFetcher = (limit: number, offset: number, reduced: boolean) => Promise<PageAnswer>;

/**
 * One unreadable study must not cost a page: Orthanc answers 400 to a whole page when one of its
 * studies cannot be read for an extra includefield (seen with pydicom samples). A refused page is
 * fetched in halves; a single refused row is fetched again with only the default attributes.
 */
export function isolatingBadRows(fetch: FieldsFetcher, onReduced: (datasets: DicomDataset[]) => void): PageFetcher {
  const get = async (limit: number, offset: number): Promise<PageAnswer> => {
    try {
      return await fetch(limit, offset, false);
    } catch (e) {
      if (!(e instanceof PacsError) || e.kind !== 'http' || (e.status !== 400 && e.status !== 500)) throw e;
      if (limit === 1) {
        const reduced = await fetch(1, offset, true);
        if (reduced.datasets.length) onReduced(reduced.datasets);
        return reduced;
      }
      const half = Math.ceil(limit / 2);
      const first = await get(half, offset);
      if (first.datasets.length < half || first.truncated) return first;
      const second = await get(limit - half, offset + half);
      return { datasets: [...first.datasets, ...second.datasets], truncated: second.truncated };
    }
  };
  return get;
}
