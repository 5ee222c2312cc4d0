/** Canonical JSON (keys sorted, no whitespace) and the content hash the sync compares. */
import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level, so equal content gives equal bytes. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
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
