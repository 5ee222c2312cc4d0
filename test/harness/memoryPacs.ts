/**
 * An in-memory PacsSource over synthetic studies, for sync tests that need no Orthanc: the whole PacsSource
 * interface, answered from the held studies in microseconds, with hooks a test sets to make it misbehave.
 * The rows are rendered as Orthanc renders them (memoryPacsRows.ts), and
 * test/integration/dicomweb/pacsSourceContract.test.ts holds it to the real DicomwebSource against Orthanc.
 *
 * Fault hooks: `fail` (the next N calls of a kind, optionally after letting some through, or only those
 * naming a study), `failStudy` (every call naming a study), `delay`, `beforeCall`. The held studies change
 * between (or during) runs with `put`, `remove` and `update`, as uploads and deletions would change a PACS.
 */
import {
  PacsError,
  WindowOverflowError,
  type DetailOptions,
  type PacsSource,
  type QidoMatch,
  emptySourceStats,
  type SourceStats,
  type StudyDetails,
  type StudyListing,
  type StudyWindow,
} from '../../src/dicomweb';
import { parseDate, readStrings, rawValues, Tag, type DicomDataset } from '../../src/dicom';
import { resolveKey } from '../../src/dicomweb/queryEncoding';
import type { SyntheticStudy } from '../fixtures/synthetic';
import { instanceMetadata, instanceRow, seriesRow, studyRow } from './memoryPacsRows';

/** The PacsSource methods a test can watch and break. */
export type PacsCall = Exclude<keyof PacsSource, 'id' | 'stats'>;

export interface RecordedCall {
  kind: PacsCall;
  /** The Study Instance UIDs the call names (details, metadata, searches by UID); [] for listings. */
  studyUids: string[];
  /** The StudyDate window a `findStudies` call listed. */
  window?: StudyWindow;
}

export interface FaultSpec {
  /** The error thrown: a PacsError from `pacsOutage` or `pacsRejection`, or one made per call. */
  error: Error | ((call: RecordedCall) => Error);
  /** How many matching calls fail (default 1; Infinity until cleared). */
  times?: number;
  /** Matching calls let through before the first failure (default 0). */
  after?: number;
  /** Which calls it applies to (default: every call of its kinds). */
  when?: (call: RecordedCall) => boolean;
}

interface Fault extends Required<Omit<FaultSpec, 'when'>> {
  kinds: readonly PacsCall[];
  when?: (call: RecordedCall) => boolean;
}

/** The PACS or the way to it is down: what the real source raises after its retries (an outage to the sync). */
export function pacsOutage(how: 'network' | 'timeout' | 502 | 503 | 504 = 'network'): PacsError {
  if (how === 'network') return new PacsError('PACS "memory": connect ECONNREFUSED', 0, 'network', true);
  if (how === 'timeout') return new PacsError('PACS "memory": no answer within 10000 ms', 0, 'timeout', true);
  return new PacsError(`PACS "memory": HTTP ${how}`, how, 'http', true);
}

/** The PACS answers, but refuses this request (a study it cannot render): not an outage. */
export function pacsRejection(status = 400): PacsError {
  return new PacsError(`PACS "memory": HTTP ${status}`, status, 'http', false);
}

const DETAIL_CALLS: readonly PacsCall[] = ['studyDetails', 'studyMetadata', 'searchStudies', 'searchSeries'];
/** Keys a window sets itself: a caller's match does not narrow them (as in the real source). */
const WINDOW_KEYS = new Set<string>([Tag.StudyDate, Tag.StudyTime]);

export interface MemoryPacsOptions {
  id?: string;
  /** Answer UID-list matching (default true); false: a comma list is taken literally and matches nothing. */
  uidListMatching?: boolean;
}

export class MemoryPacs implements PacsSource {
  readonly id: string;
  readonly stats: SourceStats = emptySourceStats();
  /** Every call made, in order. */
  readonly calls: RecordedCall[] = [];
  /** Awaited at the start of every call (after it is recorded, before any fault): a test's hook. */
  beforeCall: ((call: RecordedCall) => void | Promise<void>) | undefined;
  private held: SyntheticStudy[] = [];
  private faults: Fault[] = [];
  private readonly delays = new Map<PacsCall, number>();
  private readonly uidListMatching: boolean;

  constructor(studies: readonly SyntheticStudy[] = [], options: MemoryPacsOptions = {}) {
    this.id = options.id ?? 'memory';
    this.uidListMatching = options.uidListMatching ?? true;
    this.put(...studies);
  }

  // -- what the PACS holds ----------------------------------------------------------------------------------

  /** Adds studies, or replaces the held one with the same Study UID and patient (ID and issuer). Held as copies. */
  put(...studies: readonly SyntheticStudy[]): void {
    for (const study of studies) {
      const copy = structuredClone(study);
      const at = this.held.findIndex((h) => heldKey(h) === heldKey(study));
      if (at >= 0) this.held[at] = copy;
      else this.held.push(copy);
    }
  }

  /** Deletes the study (only its part under `patientId`, when given); returns how many parts went. */
  remove(studyUid: string, patientId?: string): number {
    const before = this.held.length;
    this.held = this.held.filter(
      (h) => h.studyUid !== studyUid || (patientId !== undefined && h.patient.id !== patientId),
    );
    return before - this.held.length;
  }

  /** Changes a held study in place (every part with this UID), as a new upload to the PACS would. */
  update(studyUid: string, change: (study: SyntheticStudy) => void): void {
    const parts = this.held.filter((h) => h.studyUid === studyUid);
    if (!parts.length) throw new Error(`memory PACS holds no study ${studyUid}`);
    parts.forEach(change);
  }

  /** Copies of the held studies. */
  studies(): SyntheticStudy[] {
    return structuredClone(this.held);
  }

  // -- fault hooks ------------------------------------------------------------------------------------------

  /** The next `times` calls of these kinds (those `when` picks, after `after` let through) throw `error`. */
  fail(kinds: PacsCall | readonly PacsCall[], spec: FaultSpec): void {
    this.faults.push({
      kinds: typeof kinds === 'string' ? [kinds] : kinds,
      error: spec.error,
      times: spec.times ?? 1,
      after: spec.after ?? 0,
      when: spec.when,
    });
  }

  /** Every detail fetch, metadata read or search naming this study fails (default: HTTP 400) until cleared. */
  failStudy(studyUid: string, error: Error = pacsRejection(400)): void {
    this.fail(DETAIL_CALLS, { error, times: Infinity, when: (c) => c.studyUids.includes(studyUid) });
  }

  /** Every call of this kind waits `ms` before answering (0: none). */
  delay(kind: PacsCall, ms: number): void {
    this.delays.set(kind, ms);
  }

  clearFaults(): void {
    this.faults = [];
    this.delays.clear();
    this.beforeCall = undefined;
  }

  /** Forgets the calls recorded so far (e.g. before the run a test looks at). */
  resetCalls(): void {
    this.calls.length = 0;
  }

  callsOf(kind: PacsCall): RecordedCall[] {
    return this.calls.filter((c) => c.kind === kind);
  }

  /** Study UIDs named by the detail fetches made so far (each once). */
  detailFetchedUids(): string[] {
    return [...new Set(this.callsOf('studyDetails').flatMap((c) => c.studyUids))];
  }

  // -- PacsSource -------------------------------------------------------------------------------------------

  async findStudies(
    window: StudyWindow,
    match: QidoMatch = {},
    options: { maxStudies?: number } = {},
  ): Promise<DicomDataset[]> {
    await this.enter('findStudies', [], window);
    for (const [name, value] of Object.entries(window))
      if (!parseDate(value)) throw new RangeError(`window.${name} "${value}" is not a DICOM date (YYYYMMDD)`);
    if (window.from > window.to) throw new RangeError(`window.from ${window.from} is after window.to ${window.to}`);
    this.stats.requests.studies++;
    const rows = this.studyRows(withoutWindowKeys(match)).filter((ds) => {
      const date = studyDateOf(ds);
      return date !== undefined && date >= window.from && date <= window.to;
    });
    if (options.maxStudies !== undefined && rows.length > options.maxStudies) {
      const seen = rows.slice(0, options.maxStudies + 1);
      throw new WindowOverflowError(
        window,
        seen.length,
        seen.map((ds) => studyDateOf(ds) ?? ''),
      );
    }
    return rows;
  }

  /** A whole search, as the real source lists it by splitting: a double holds every row, so nothing is truncated. */
  async listStudies(match: QidoMatch, options: { maxStudies?: number } = {}): Promise<StudyListing> {
    await this.enter('listStudies', namedStudyUids(match));
    this.stats.requests.studies++;
    const datasets = this.studyRows(match);
    if (options.maxStudies !== undefined && datasets.length > options.maxStudies) {
      const seen = datasets.slice(0, options.maxStudies + 1).map((ds) => studyDateOf(ds) ?? '');
      throw new WindowOverflowError({ from: '', to: '' }, seen.length, seen);
    }
    return { datasets, truncated: [] };
  }

  async findUndatedStudies(match: QidoMatch = {}): Promise<DicomDataset[]> {
    await this.enter('findUndatedStudies', []);
    this.stats.requests.studies++;
    return this.studyRows(withoutWindowKeys(match)).filter((ds) => studyDateOf(ds) === undefined);
  }

  async searchStudies(match: QidoMatch, page?: { limit: number; offset: number }): Promise<DicomDataset[]> {
    await this.enter('searchStudies', namedStudyUids(match));
    this.stats.requests.studies++;
    return paged(this.studyRows(match), page);
  }

  async searchSeries(match: QidoMatch, page?: { limit: number; offset: number }): Promise<DicomDataset[]> {
    await this.enter('searchSeries', namedStudyUids(match));
    this.stats.requests.series++;
    const rows = this.held.flatMap((study) => study.series.map((s) => seriesRow(study, s)));
    return paged(
      rows.filter((ds) => this.matches(ds, match)),
      page,
    );
  }

  async studyDetails(studyUids: string[], options: DetailOptions = {}): Promise<Map<string, StudyDetails>> {
    const uids = [...new Set(studyUids)];
    await this.enter('studyDetails', uids);
    const calls = this.uidListMatching ? 1 : uids.length;
    this.stats.requests.series += calls;
    if (options.instances !== false) this.stats.requests.instances += calls;
    const details = new Map<string, StudyDetails>();
    for (const uid of uids) {
      const parts = this.held.filter(
        (h) => h.studyUid === uid && (options.patientId === undefined || h.patient.id === options.patientId),
      );
      const series = parts.flatMap((study) => study.series.map((s) => ({ study, s })));
      const instances = series.flatMap(({ study, s }) => s.instances.map((i) => instanceRow(study, s, i)));
      const d: StudyDetails = {
        series: series.map(({ study, s }) => seriesRow(study, s)),
        instances: options.instances === false ? [] : instances,
      };
      if (options.metadata) this.addMetadata(d, parts);
      details.set(uid, d);
    }
    return details;
  }

  async studyMetadata(studyUid: string): Promise<DicomDataset[]> {
    await this.enter('studyMetadata', [studyUid]);
    this.stats.requests.metadata++;
    const parts = this.held.filter((h) => h.studyUid === studyUid);
    if (!parts.length) throw pacsRejection(404);
    return parts.flatMap((study) => study.series.flatMap((s) => s.instances.map((i) => instanceMetadata(study, s, i))));
  }

  async supportsUidListMatching(): Promise<boolean> {
    await this.enter('supportsUidListMatching', []);
    return this.uidListMatching;
  }

  // -- internals --------------------------------------------------------------------------------------------

  /** Records the call, runs the test's hook and delay, and throws the first fault that claims it. */
  private async enter(kind: PacsCall, studyUids: string[], window?: StudyWindow): Promise<void> {
    const call: RecordedCall = window ? { kind, studyUids, window: { ...window } } : { kind, studyUids };
    this.calls.push(call);
    await this.beforeCall?.(call);
    const ms = this.delays.get(kind);
    if (ms) await new Promise((resolve) => setTimeout(resolve, ms));
    const fault = this.faults.find((f) => f.times > 0 && f.kinds.includes(kind) && (f.when?.(call) ?? true));
    if (!fault) return;
    if (fault.after > 0) {
      fault.after--;
      return;
    }
    fault.times--;
    throw typeof fault.error === 'function' ? fault.error(call) : fault.error;
  }

  /** One row per study the PACS keeps (Study UID + Patient ID), in the order first uploaded. */
  private studyRows(match: QidoMatch): DicomDataset[] {
    const groups = new Map<string, SyntheticStudy[]>();
    for (const h of this.held) {
      const key = `${h.studyUid}\u0000${h.patient.id}`;
      groups.set(key, [...(groups.get(key) ?? []), h]);
    }
    return [...groups.values()].map(studyRow).filter((ds) => this.matches(ds, match));
  }

  private matches(ds: DicomDataset, match: QidoMatch): boolean {
    return Object.entries(match).every(([key, value]) => this.matchesKey(ds, resolveKey(key), value));
  }

  /**
   * QIDO-RS matching of one key (PS3.4 C.2.2.2): universal for an empty value, UID lists for UIDs, ranges for
   * dates, `*`/`?` wildcards for text; a multi-valued attribute (ModalitiesInStudy) matches when any value does.
   */
  private matchesKey(ds: DicomDataset, tag: string, value: string): boolean {
    if (value === '') return true;
    const vr = ds[tag]?.vr;
    const values = attributeTexts(ds, tag);
    if (vr === 'UI') {
      const wanted = this.uidListMatching ? value.split(',') : [value];
      return values.some((v) => wanted.includes(v));
    }
    if (vr === 'DA' && value.includes('-')) {
      const [from, to] = value.split('-');
      return values.some((v) => (!from || v >= from) && (!to || v <= to));
    }
    if (/[*?]/.test(value)) {
      const pattern = wildcardPattern(value);
      return values.some((v) => pattern.test(v));
    }
    return values.includes(value);
  }

  /** One instance's WADO-RS metadata for enrichment: the first instance's, as the real source reads one. */
  private addMetadata(d: StudyDetails, parts: SyntheticStudy[]): void {
    this.stats.requests.metadata++;
    for (const study of parts)
      for (const s of study.series)
        for (const i of s.instances) {
          d.metadata = instanceMetadata(study, s, i);
          return;
        }
  }
}

/** What one upload is known by: a later `put` with the same key replaces it. */
function heldKey(s: SyntheticStudy): string {
  return [s.studyUid, s.patient.id, s.patient.issuer ?? ''].join('\u0000');
}

/** A QIDO wildcard value (`*` any run, `?` one character) as an anchored pattern. */
function wildcardPattern(value: string): RegExp {
  const escaped = value.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${escaped.replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/** A strict DA StudyDate, or undefined for an undated study (missing, empty or malformed), as the real source. */
function studyDateOf(ds: DicomDataset): string | undefined {
  const [date] = attributeTexts(ds, Tag.StudyDate);
  return date !== undefined && /^\d{8}$/.test(date) && parseDate(date) ? date : undefined;
}

/** An attribute's values as text (PN: each group), for matching. */
function attributeTexts(ds: DicomDataset, tag: string): string[] {
  const raw = rawValues(ds, tag);
  if (raw.kind !== 'value') return [];
  if (ds[tag]?.vr === 'PN')
    return raw.value.flatMap((v) => Object.values(v as Record<string, string>).filter((x) => typeof x === 'string'));
  const strings = readStrings(ds, tag);
  return strings.kind === 'value' ? strings.value : [];
}

function withoutWindowKeys(match: QidoMatch): QidoMatch {
  return Object.fromEntries(Object.entries(match).filter(([k]) => !WINDOW_KEYS.has(resolveKey(k))));
}

/** The Study Instance UIDs a search's match names (a UID list counts each). */
function namedStudyUids(match: QidoMatch): string[] {
  const entry = Object.entries(match).find(([k]) => resolveKey(k) === Tag.StudyInstanceUID);
  return entry ? entry[1].split(',').filter(Boolean) : [];
}

function paged(rows: DicomDataset[], page?: { limit: number; offset: number }): DicomDataset[] {
  return page ? rows.slice(page.offset, page.offset + page.limit) : rows;
}
