/**
 * What a run does with one discovered study, given what the store remembers of it; and when a failed
 * study is next tried. Pure functions, so the policy is testable without a PACS.
 */
import type { StudyState } from '../state';

export type StudyDecision =
  /** New, changed, previously removed, or a failure whose retry is due: fetch details and map. */
  | 'fetch'
  /** Same fingerprint as when last synced: nothing to fetch. */
  | 'unchanged'
  /** Failed before and its next retry is still ahead. */
  | 'backoff'
  /** A dead letter: untouched until replayed. */
  | 'dead'
  /** Held for an operator (a Study UID under two patients): untouched until replayed. */
  | 'quarantined';

export function decideStudy(state: StudyState | undefined, fingerprint: string, now: Date): StudyDecision {
  if (!state) return 'fetch';
  switch (state.status) {
    case 'dead':
      return 'dead';
    case 'quarantined':
      return 'quarantined';
    case 'failing':
      // A study that changed since it failed may have been fixed at the PACS: try it now.
      if (state.fingerprint !== fingerprint) return 'fetch';
      return !state.nextRetryAt || Date.parse(state.nextRetryAt) <= now.getTime() ? 'fetch' : 'backoff';
    case 'removed':
      return 'fetch';
    case 'synced':
      return state.fingerprint === fingerprint ? 'unchanged' : 'fetch';
  }
}

/** Exponential backoff: base · 2^(attempts−1), capped. `attempts` counts the failure just recorded. */
export function retryDelaySeconds(attempts: number, baseSeconds: number, maxSeconds: number): number {
  if (attempts < 1) return 0;
  return Math.min(maxSeconds, baseSeconds * 2 ** Math.min(attempts - 1, 40));
}
