/** FHIR forbids empty strings, arrays and objects: drop them (recursively), trimming strings first. */
export function prune<T>(value: T): T | undefined {
  return pruneValue(value) as T | undefined;
}

// Control characters (e.g. unconverted ISO 2022 escapes) are not allowed in FHIR strings.
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
const CONTROLS = new RegExp(CONTROL.source, 'g');

function pruneValue(value: unknown): unknown {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') {
    // Tested first: almost no string has one, and replace() costs more than test().
    const s = (CONTROL.test(value) ? value.replace(CONTROLS, '') : value).trim();
    return s ? s : undefined;
  }
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (Array.isArray(value)) {
    const out = value.map(pruneValue).filter((v) => v !== undefined);
    return out.length ? out : undefined;
  }
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const p = pruneValue(v);
      if (p !== undefined) out[k] = p;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return value;
}
