/**
 * Paging position across several sources. Results are the sources' results one after the other, in
 * configured order; a position is (source index, offset in that source) plus the lengths of the
 * sources already passed, which are known once paged through and let `previous` step back across a
 * source boundary. Written into links as dot-separated numbers: "s.o.len0.len1…".
 */
import { badRequest } from './outcome';

export interface Cursor {
  source: number;
  offset: number;
  /** Result counts of sources 0 … source-1. */
  lengths: number[];
}

export const START: Cursor = { source: 0, offset: 0, lengths: [] };

export function encodeCursor(c: Cursor): string {
  return [c.source, c.offset, ...c.lengths].join('.');
}

/** A position as links carry it: none for the start. */
export function pageAt(c: Cursor | undefined): { cursor?: string } | undefined {
  if (!c) return undefined;
  return c.source || c.offset ? { cursor: encodeCursor(c) } : {};
}

export function decodeCursor(raw: string | undefined, sourceCount: number): Cursor {
  if (raw === undefined) return START;
  const n = raw.split('.').map(Number);
  const [source, offset, ...lengths] = n;
  if (n.some((x) => !Number.isSafeInteger(x) || x < 0) || source >= sourceCount || lengths.length !== source) {
    throw badRequest('_cursor is not a paging position this server gave out.', '_cursor');
  }
  return { source, offset, lengths };
}

/** What one source gave a page: the offset to resume at when more remain in it, else its full length. */
export type SourcePart = { next: number } | { end: number };

/**
 * Walks the sources from the cursor's position, each filling what the page still needs (`part` is handed
 * the source's index and its start offset), and returns where the next page starts, if anywhere.
 */
export async function walkSources(
  cursor: Cursor,
  sourceCount: number,
  part: (source: number, offset: number) => SourcePart | Promise<SourcePart>,
): Promise<Cursor | undefined> {
  const lengths = cursor.lengths.slice();
  for (let i = cursor.source; i < sourceCount; i++) {
    const p = await part(i, i === cursor.source ? cursor.offset : 0);
    if ('next' in p) return { source: i, offset: p.next, lengths };
    lengths.push(p.end);
  }
  return undefined;
}

/** Position in the concatenated results. */
export function globalOffset(c: Cursor): number {
  return c.lengths.reduce((a, b) => a + b, 0) + c.offset;
}

/** The start of the page before the one starting at `c`, or undefined on the first page. */
export function previousCursor(c: Cursor, count: number): Cursor | undefined {
  let g = globalOffset(c);
  if (g === 0) return undefined;
  g = Math.max(0, g - count);
  for (let i = 0; i < c.lengths.length; i++) {
    if (g < c.lengths[i]) return { source: i, offset: g, lengths: c.lengths.slice(0, i) };
    g -= c.lengths[i];
  }
  return { source: c.source, offset: g, lengths: c.lengths };
}
