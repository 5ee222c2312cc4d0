/**
 * Which PACS failures are an outage (the run ends, nothing charged to the studies): one rule, isPacsOutage,
 * beside PacsError; the sync's isSourceOutage adds the connection errors of a source that is not DICOMweb.
 */
import { isPacsOutage, PacsError } from '../../../src/dicomweb';
import { isSourceOutage } from '../../../src/sync/errors';

type Kind = ConstructorParameters<typeof PacsError>[2];

it.each<[string, number, Kind, boolean]>([
  ['no answer', 0, 'network', true],
  ['a timeout', 0, 'timeout', true],
  ['502', 502, 'http', true],
  ['503', 503, 'http', true],
  ['504', 504, 'http', true],
  ['500', 500, 'http', false],
  ['429', 429, 'http', false],
  ['404', 404, 'http', false],
  ['refused credentials', 401, 'auth', false],
  ['a malformed answer', 200, 'bad-response', false],
])('%s (%i, %s): outage %s', (_what, status, kind, outage) => {
  const err = new PacsError(`PACS "a": ${status}`, status, kind, true);
  expect(isPacsOutage(err)).toBe(outage);
  expect(isSourceOutage(err)).toBe(outage);
});

it('only a PacsError is a PACS outage; the sync also takes connection errors of other sources', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  expect(isPacsOutage(refused)).toBe(false);
  expect(isSourceOutage(refused)).toBe(true);
  for (const code of ['ECONNRESET', 'ETIMEDOUT']) expect(isSourceOutage({ code })).toBe(true);
  expect(isSourceOutage({ code: 'ENOENT' })).toBe(false);
  for (const err of [undefined, null, 'down', new Error('boom')]) {
    expect(isPacsOutage(err)).toBe(false);
    expect(isSourceOutage(err)).toBe(false);
  }
});
