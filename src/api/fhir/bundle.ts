/** Searchset Bundles: entries, paging links and the self link of what was actually applied. */
import type { Bundle, BundleEntry, BundleLink, OperationOutcome, OperationOutcomeIssue, Resource } from 'fhir/r4';

/** A page's `_cursor` as its links write it; none on the first page. */
export interface PageAt {
  cursor?: string;
}

export interface BundleInput {
  base: string;
  resourceType: string;
  /** Accepted parameters (normalised), without _count and _cursor. */
  used: [string, string][];
  count: number;
  self?: PageAt;
  next?: PageAt;
  previous?: PageAt;
  matches: Resource[];
  includes?: Resource[];
  problems?: OperationOutcomeIssue[];
  total?: number;
}

export function searchUrl(
  base: string,
  resourceType: string,
  used: [string, string][],
  count: number | undefined,
  at?: PageAt,
): string {
  const q = new URLSearchParams(used);
  if (count !== undefined) q.append('_count', String(count));
  if (at?.cursor) q.append('_cursor', at.cursor);
  const qs = q.toString();
  return `${base}/${resourceType}${qs ? `?${qs}` : ''}`;
}

export function searchBundle(i: BundleInput): Bundle {
  const link: BundleLink[] = [{ relation: 'self', url: searchUrl(i.base, i.resourceType, i.used, i.count, i.self) }];
  if (i.next) link.push({ relation: 'next', url: searchUrl(i.base, i.resourceType, i.used, i.count, i.next) });
  if (i.previous)
    link.push({ relation: 'previous', url: searchUrl(i.base, i.resourceType, i.used, i.count, i.previous) });
  const entry: BundleEntry[] = [
    ...i.matches.map((resource) => ({
      fullUrl: `${i.base}/${resource.resourceType}/${resource.id}`,
      resource,
      search: { mode: 'match' as const },
    })),
    ...(i.includes ?? []).map((resource) => ({
      fullUrl: `${i.base}/${resource.resourceType}/${resource.id}`,
      resource,
      search: { mode: 'include' as const },
    })),
  ];
  if (i.problems?.length) {
    entry.push({
      resource: { resourceType: 'OperationOutcome', issue: i.problems } as OperationOutcome,
      search: { mode: 'outcome' },
    });
  }
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset' };
  if (i.total !== undefined) bundle.total = i.total;
  bundle.link = link;
  if (entry.length) bundle.entry = entry;
  return bundle;
}
