/** Asserts every resource a test produced validates against base R4 + TW Core (every mapping test's bar). */
import type { MapResult } from '../../../src/mapping/types';
import { isBlocking, validateEndpoint, validateImagingStudy } from '../../../src/mapping';

export function expectValid(result: MapResult): Extract<MapResult, { ok: true }> {
  if (!result.ok) throw new Error(`expected a mapped study, got ${result.error.code}: ${result.error.message}`);
  const issues = [...validateImagingStudy(result.imagingStudy), ...validateEndpoint(result.endpoint)].filter(
    isBlocking,
  );
  expect(issues).toEqual([]);
  return result;
}
