/**
 * How the sinks' answers for one study make its outcome: pure, so the rule is testable without a run.
 * One sink unavailable is an outage (not the study's fault); any other refusal is the study's rejection.
 */
import type { WriteOutcome } from '../sinks';

export type StudySinkOutcome =
  /** Every sink accepted it; `first` is the first sink's answer (its ids are the ones recorded). */
  | { kind: 'synced'; first?: Extract<WriteOutcome, { ok: true }>; unchanged: boolean }
  /** A sink could not take the write at all: `sink` names the first such sink, `error` its answer. */
  | { kind: 'outage'; sink: string; error: string }
  /** One or more sinks refused the study: their errors, each prefixed by the sink's name. */
  | { kind: 'rejected'; error: string };

/**
 * One study's outcome from each sink's answers (`perSink[i]` is sink `sinkNames[i]`'s, by study UID). A sink
 * that gave no answer for the study counts as a retryable failure. An outage wins over rejections, so a study
 * is never charged an attempt while a sink is down.
 */
export function mergeSinkOutcomes(
  studyUid: string,
  sinkNames: readonly string[],
  perSink: readonly ReadonlyMap<string, WriteOutcome>[],
): StudySinkOutcome {
  const results = perSink.map(
    (m, i): WriteOutcome =>
      m.get(studyUid) ?? {
        studyUid,
        ok: false,
        error: `sink ${sinkNames[i]} returned no outcome`,
        retryable: true,
      },
  );
  const down = results.findIndex((r) => !r.ok && r.unavailable);
  if (down >= 0) {
    const r = results[down] as Extract<WriteOutcome, { ok: false }>;
    return { kind: 'outage', sink: sinkNames[down]!, error: r.error };
  }
  const failed = results
    .map((r, i) => (r.ok ? undefined : `${sinkNames[i]}: ${r.error}`))
    .filter((e): e is string => !!e);
  if (failed.length) return { kind: 'rejected', error: `sink rejected: ${failed.join('; ')}` };
  return {
    kind: 'synced',
    first: results[0] as Extract<WriteOutcome, { ok: true }> | undefined,
    unchanged: results.every((r) => r.ok && r.unchanged),
  };
}
