/**
 * A sorted search as a step over any StudyLookup (live or store, cached or not): every match is read
 * through the lookup's own paging, ordered by the `_sort` keys (sort.ts), and the page after the
 * cursor's position is cut from that order. A sort needs every match, so it is refused beyond a cap.
 */
import type { OperationOutcomeIssue } from 'fhir/r4';
import { START, type Cursor } from './cursor';
import { FhirError } from './outcome';
import type { Criterion } from './params';
import { comparePositions, sortValues, type SortKey, type SortPosition } from './sort';
import type { FoundStudy, StudyLookup } from './studies';

export interface SortedRequest {
  criteria: Criterion[];
  count: number;
  sort: SortKey[];
  /** The position of the last study the previous page showed; absent on the first page. */
  after?: SortPosition;
}

export interface SortedPage {
  studies: FoundStudy[];
  total: number;
  /** Where the next page starts (after this position), when one follows. */
  next?: SortPosition;
  /** The page before: `{}` is the first page (no position), absent on the first page itself. */
  previous?: { after?: SortPosition };
  problems: OperationOutcomeIssue[];
}

export interface SortLimits {
  /** Matches read per lookup page. */
  batch: number;
  /** The most matches a sorted search may have. */
  cap: number;
}

/** Every match of the search through the lookup's paging, in the lookup's order; 400 beyond `cap`. */
async function allMatches(lookup: StudyLookup, criteria: Criterion[], limits: SortLimits) {
  const studies: FoundStudy[] = [];
  const problems: OperationOutcomeIssue[] = [];
  for (let cursor: Cursor | undefined = START; cursor;) {
    const page = await lookup.search({ criteria, count: limits.batch, cursor });
    studies.push(...page.studies);
    problems.push(...page.problems);
    if (studies.length > limits.cap)
      throw new FhirError(
        400,
        'too-costly',
        `A sorted search orders all its matches, and this one has more than ${limits.cap}; narrow it (for example with started).`,
      );
    cursor = page.next;
  }
  return { studies, problems };
}

/** The matches in sort order, each with its position (values, id, rank among equals). */
function ordered(lookup: StudyLookup, studies: FoundStudy[], sort: SortKey[]) {
  const entries = studies.map((study) => ({
    study,
    pos: { values: sortValues(study, sort, lookup.zoneOf(study.sourceId)), id: study.resource.id ?? '', n: 0 },
  }));
  // A stable sort keeps the lookup's order among a study listed twice; `n` then tells them apart.
  entries.sort((a, b) => comparePositions(a.pos, b.pos, sort));
  for (let i = 1; i < entries.length; i++) {
    const prev = entries[i - 1].pos;
    if (comparePositions({ ...prev, n: 0 }, { ...entries[i].pos, n: 0 }, sort) === 0) entries[i].pos.n = prev.n + 1;
  }
  return entries;
}

export async function sortedSearch(lookup: StudyLookup, req: SortedRequest, limits: SortLimits): Promise<SortedPage> {
  const { studies, problems } = await allMatches(lookup, req.criteria, limits);
  const entries = ordered(lookup, studies, req.sort);
  const after = req.after;
  const start = after ? firstAfter(entries, after, req.sort) : 0;
  const page = entries.slice(start, start + req.count);
  const out: SortedPage = { studies: page.map((e) => e.study), total: entries.length, problems };
  if (start + page.length < entries.length) out.next = page[page.length - 1].pos;
  if (start > 0) {
    const from = Math.max(0, start - req.count);
    out.previous = from === 0 ? {} : { after: entries[from - 1].pos };
  }
  return out;
}

/** Index of the first entry after a position (binary search: entries are in order). */
function firstAfter(entries: { pos: SortPosition }[], after: SortPosition, sort: SortKey[]): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (comparePositions(entries[mid].pos, after, sort) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
