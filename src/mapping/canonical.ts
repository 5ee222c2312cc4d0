/** Canonical JSON (keys sorted, no whitespace) and the content hash the sync compares. */
import { createHash } from 'node:crypto';

/**
 * JSON with object keys sorted at every level, so equal content gives equal bytes. Written directly
 * rather than by copying into sorted objects for JSON.stringify: it runs for every study of every sync.
 */
export function canonicalJson(value: unknown): string {
  return write(value) ?? 'null';
}

const INDEX_KEY = /^(0|[1-9]\d*)$/;
const isIndexKey = (k: string) => k.charCodeAt(0) <= 57 && INDEX_KEY.test(k) && Number(k) < 2 ** 32 - 1;

/**
 * Keys sorted, in the order an object built with sorted keys would list them (the form hashes were
 * first computed with): JavaScript puts integer-like keys first, in numeric order.
 */
function sortedKeys(value: object): string[] {
  const keys = Object.keys(value).sort();
  if (!keys.some(isIndexKey)) return keys;
  return [...keys.filter(isIndexKey).sort((a, b) => Number(a) - Number(b)), ...keys.filter((k) => !isIndexKey(k))];
}

/** Like JSON.stringify of plain data: undefined is left out of objects and becomes null in arrays. */
function write(value: unknown): string | undefined {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => write(v) ?? 'null').join(',')}]`;
      const parts: string[] = [];
      for (const key of sortedKeys(value)) {
        const v = write((value as Record<string, unknown>)[key]);
        if (v !== undefined) parts.push(`${JSON.stringify(key)}:${v}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      return undefined;
  }
}

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

/**
 * A stable hash of a resource's content. Server-assigned meta (versionId, lastUpdated) is left out so
 * a resource read back from the FHIR server hashes like the one the mapper produced.
 */
export function contentHash(resource: object): string {
  const copy = { ...(resource as Record<string, unknown>) };
  const meta = copy.meta as Record<string, unknown> | undefined;
  if (meta && typeof meta === 'object') {
    const { versionId: _v, lastUpdated: _l, ...rest } = meta;
    copy.meta = Object.keys(rest).length ? rest : undefined;
  }
  return sha256Hex(canonicalJson(copy));
}
