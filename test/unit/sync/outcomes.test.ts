/** One study's outcome from every sink's answer (src/sync/outcomes.ts): synced, an outage, or its own rejection. */
import type { WriteOutcome } from '../../../src/sinks/sink';
import { mergeSinkOutcomes } from '../../../src/sync/outcomes';

const UID = '2.25.1';
const ok = (over: Partial<Extract<WriteOutcome, { ok: true }>> = {}): WriteOutcome => ({
  studyUid: UID,
  ok: true,
  resourceId: 'study-1',
  ...over,
});
const refused = (error: string, over: Partial<Extract<WriteOutcome, { ok: false }>> = {}): WriteOutcome => ({
  studyUid: UID,
  ok: false,
  error,
  retryable: false,
  ...over,
});
const down = (error: string) => refused(error, { retryable: true, unavailable: true });
/** Each sink's answers, by study UID, as the run collects them. */
const answers = (...outcomes: (WriteOutcome | undefined)[]) => outcomes.map((o) => new Map(o ? [[UID, o]] : []));

describe('mergeSinkOutcomes', () => {
  it('is synced when every sink accepted, with the first sink’s answer; unchanged only if unchanged everywhere', () => {
    const first = ok({ resourceId: 'a', versionId: '3', unchanged: true });
    expect(mergeSinkOutcomes(UID, ['embedded', 'fhir'], answers(first, ok({ unchanged: true })))).toEqual({
      kind: 'synced',
      first,
      unchanged: true,
    });
    expect(mergeSinkOutcomes(UID, ['embedded', 'fhir'], answers(first, ok()))).toMatchObject({
      kind: 'synced',
      unchanged: false,
    });
  });

  it('is an outage, naming the first sink that is down, even when another sink rejected the study', () => {
    const sinks = ['embedded', 'picky', 'fhir', 'backup'];
    const outcome = mergeSinkOutcomes(
      UID,
      sinks,
      answers(ok(), refused('HTTP 422'), down('HTTP 503'), down('HTTP 502')),
    );
    expect(outcome).toEqual({ kind: 'outage', sink: 'fhir', error: 'HTTP 503' });
  });

  it('is a rejection carrying every refusing sink’s error, each under its sink’s name', () => {
    const outcome = mergeSinkOutcomes(
      UID,
      ['embedded', 'fhir', 'backup'],
      answers(refused('ImagingStudy has no id'), ok(), refused('HTTP 500', { retryable: true })),
    );
    expect(outcome).toEqual({
      kind: 'rejected',
      error: 'sink rejected: embedded: ImagingStudy has no id; backup: HTTP 500',
    });
  });

  it('counts a sink that gave no answer for the study as a rejection, not an outage', () => {
    expect(mergeSinkOutcomes(UID, ['embedded', 'fhir'], answers(ok(), undefined))).toEqual({
      kind: 'rejected',
      error: 'sink rejected: fhir: sink fhir returned no outcome',
    });
  });

  it('reads only this study’s answers', () => {
    const other = new Map<string, WriteOutcome>([['2.25.2', down('HTTP 503')]]);
    expect(mergeSinkOutcomes(UID, ['fhir'], [new Map([...other, [UID, ok()]])])).toMatchObject({ kind: 'synced' });
  });

  it('with no sinks at all, is synced and unchanged (nothing to write to)', () => {
    expect(mergeSinkOutcomes(UID, [], [])).toEqual({ kind: 'synced', first: undefined, unchanged: true });
  });
});
