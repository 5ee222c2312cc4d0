/**
 * A source's verdict for monitoring: healthy, or unhealthy with the reasons. A small pure function over the
 * status `status` already read (sync.ts's SourceStatus); `status` exits EXIT.unhealthy when any source is not
 * healthy, and `--json` carries each verdict. To add a reason, add one check to CHECKS.
 */
import type { SourceCounts } from '../state';
import type { Coverage } from '../sync';

export type ReasonCode =
  'coverage-never-swept' | 'coverage-overdue' | 'coverage-short' | 'coverage-held' | 'dead-letters' | 'quarantined';

export interface UnhealthyReason {
  code: ReasonCode;
  /** In words, for the terminal; never names a patient. */
  message: string;
}

export interface Verdict {
  healthy: boolean;
  reasons: UnhealthyReason[];
}

/**
 * The status data a check reads (the part of sync.ts's SourceStatus it needs, declared here so that this
 * file does not import sync.ts back; checks and tests need no more than that).
 */
export interface VerdictInput {
  coverage: Coverage;
  counts: SourceCounts;
}

type Check = (s: VerdictInput) => UnhealthyReason | undefined;

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** Never swept, overdue, short, removals held: the coverage verdict (src/sync/sweepCoverage.ts) in words. */
const coverage: Check = ({ coverage: c }) =>
  c.health === 'ok' ? undefined : { code: `coverage-${c.health}`, message: c.problems.join('; ') };

/** Dead letters wait for an operator: they are never retried on their own. */
const deadLetters: Check = ({ counts }) =>
  counts.dead > 0
    ? { code: 'dead-letters', message: `${plural(counts.dead, 'study is', 'studies are')} dead-lettered` }
    : undefined;

/** Quarantined studies (a Study UID under two patients) are not written until the PACS is fixed. */
const quarantined: Check = ({ counts }) =>
  counts.quarantined > 0
    ? {
        code: 'quarantined',
        message: `${plural(counts.quarantined, 'study is', 'studies are')} quarantined (Study UID under two patients)`,
      }
    : undefined;

/** Every reason a source can be unhealthy for, in the order they are reported. */
const CHECKS: readonly Check[] = [coverage, deadLetters, quarantined];

export function sourceVerdict(s: VerdictInput): Verdict {
  const reasons = CHECKS.map((check) => check(s)).filter((r): r is UnhealthyReason => r !== undefined);
  return { healthy: reasons.length === 0, reasons };
}

/** The verdict as one line of `status`. */
export function verdictLine(v: Verdict): string {
  return v.healthy ? '  verdict: healthy\n' : `  verdict: UNHEALTHY: ${v.reasons.map((r) => r.message).join('; ')}\n`;
}
