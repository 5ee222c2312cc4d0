/**
 * Turns validated search criteria into the store's search-index filter: what can be pushed down to
 * SQL, always a superset of what the matcher (match.ts) accepts. Token systems are left to the matcher,
 * and date-times become the same widened local-day range the live PACS query uses. Pure.
 */
import type { StudyIndexFilter } from '../../state';
import { instantRange, qidoDateRange, type DateValue } from './dates';
import { lastUpdatedBounds, type LastUpdatedValue } from './lastUpdated';
import type { Criterion } from './params';

/** The filter for one source, or null when no study can match (an empty date range). */
export function storeFilterFor(criteria: Criterion[], sourceId: string, zone: string): StudyIndexFilter | null {
  const f: Required<Pick<StudyIndexFilter, 'tokens' | 'instant' | 'statuses' | 'lastUpdated'>> & StudyIndexFilter = {
    sourceId,
    tokens: [],
    instant: [],
    statuses: [],
    lastUpdated: [],
  };
  const dates: DateValue[] = [];
  for (const c of criteria) {
    switch (c.kind) {
      case 'studyUid':
        f.tokens.push(c.uids.map((value) => ({ kind: 'uid', value })));
        break;
      case 'identifier':
        f.tokens.push([{ kind: 'identifier', value: c.token.value }]);
        break;
      case 'patientId':
        f.tokens.push([
          { kind: 'patient', value: c.patientId },
          { kind: 'subject', value: c.reference },
        ]);
        break;
      case 'patientIdentifier':
        f.tokens.push([{ kind: 'patient', value: c.token.value }]);
        break;
      case 'modality':
        f.tokens.push([{ kind: 'modality', value: c.token.value }]);
        break;
      case 'series':
        f.tokens.push(c.uids.map((value) => ({ kind: 'series', value })));
        break;
      case 'status':
        f.statuses.push(c.statuses);
        break;
      case 'started':
        dates.push(c.value);
        if (c.value.time) f.instant.push(instantBounds(c.value, zone));
        break;
      case 'lastUpdated':
        f.lastUpdated.push(lastUpdatedIsoBounds(c.value));
        break;
    }
  }
  if (dates.length) {
    const range = qidoDateRange(dates, zone);
    if (!range) return null;
    if (range.StudyDate) {
      const [from, to] = range.StudyDate.includes('-')
        ? range.StudyDate.split('-')
        : [range.StudyDate, range.StudyDate];
      if (from) f.dayFrom = from;
      if (to) f.dayTo = to;
    }
  }
  return f;
}

/** [from, to) instants a date-time criterion admits, for studies whose start instant is known. */
function instantBounds(v: DateValue, zone: string): { from?: number; to?: number } {
  const { start, end } = instantRange(v.time!, zone);
  switch (v.prefix) {
    case 'eq':
      return { from: start, to: end };
    case 'ge':
      return { from: start };
    case 'gt':
      return { from: end };
    case 'le':
      return { to: end };
    case 'lt':
      return { to: start };
  }
}

/** The instants whose ISO strings order as they do: years 0000 to 9999. */
const ISO_MIN = Date.parse('0000-01-01T00:00:00.000Z');
const ISO_MAX = Date.parse('9999-12-31T23:59:59.999Z');

/** A `_lastUpdated` value's [from, to) as ISO instants; no bound where the value has none (ne) or ISO cannot say it. */
function lastUpdatedIsoBounds(v: LastUpdatedValue): { from?: string; to?: string } {
  const b = lastUpdatedBounds(v) ?? {};
  const out: { from?: string; to?: string } = {};
  if (b.from !== undefined && b.from > ISO_MIN) out.from = new Date(Math.min(b.from, ISO_MAX)).toISOString();
  if (b.to !== undefined && b.to <= ISO_MAX) out.to = new Date(Math.max(b.to, ISO_MIN)).toISOString();
  return out;
}
