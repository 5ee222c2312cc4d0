/**
 * Live lookups: QIDO-RS at the PACS, mapped with the mapper. A page first lists each source's
 * candidates from study-level rows (see searchLive); only the page's studies are fetched in detail.
 * A page costs, per source it touches, the study-level listing (cached per search) and one batched
 * detail query for the studies not already cached (plus one series-level query per `series`
 * parameter, which turns Series Instance UIDs into the Study Instance UIDs asked for).
 */
import type { ImagingStudy, OperationOutcomeIssue } from 'fhir/r4';
import { PacsError, type QidoMatch, TRUNCATED_BY_PACS, truncationOf, WindowOverflowError } from '../../dicomweb';
import { type DicomDataset, studyUidOf } from '../../dicom';
import { mapStudy, detailConflict, endpointReference, imagingStudyId, STUDY_UID_CONFLICT } from '../../mapping';
import type { Logger } from '../../log';
import type { ApiConfig } from '../config';
import { AnswerCache } from './cache';
import { walkSources, type SourcePart } from './cursor';
import { matchContextFor, matchesAll } from './match';
import { FhirError } from './outcome';
import type { Criterion } from './params';
import { qidoPlanFor, type QidoPlan } from './qido';
import {
  pacsFailure,
  SourceDirectory,
  type ApiSource,
  type FoundStudy,
  type SearchRequest,
  type StudyLookup,
  type StudyPage,
} from './studies';

/** One source's study-level candidates for a search (see searchLive). */
interface SourceScan {
  /** The criteria for this source, `series` resolved to Study Instance UIDs. */
  criteria: Criterion[];
  /** Absent when no study of this source can match. */
  plan?: QidoPlan;
  /** Listed whole (within `maxCountScan` rows): `candidates` holds every one, in id order. */
  complete: boolean;
  candidates: DicomDataset[];
  /** Rows left out of a complete listing (no Study Instance UID), reported with each page of the source. */
  keyless?: number;
  /** Studies (by id) of this source that later sources list too: answered once, with every holder's Endpoint. */
  alsoIn?: Map<string, string[]>;
  /** Searches the PACS still truncated after splitting (see listStudies): some studies may be missing. */
  truncated?: string[];
}

export class LiveLookup extends SourceDirectory implements StudyLookup {
  /** Study-level candidate lists per source and search (pages and counts of one search share them). */
  private readonly scans: AnswerCache<SourceScan>;
  /** Mapped studies by source, UID and instance flag, shared by searches and reads. */
  private readonly studies: AnswerCache<ImagingStudy>;
  /** In-flight sharing of detail fetches only (their results live on in `studies`). */
  private readonly detailBatches: AnswerCache<Map<string, ImagingStudy | string>>;

  constructor(
    private readonly cfg: ApiConfig,
    sources: ApiSource[],
    private readonly log: Logger,
  ) {
    super(sources, cfg.searchSources);
    const c = cfg.cache;
    this.scans = new AnswerCache({
      enabled: c.enabled,
      ttlSeconds: c.ttlSeconds,
      maxKeys: c.maxKeys,
      dedupe: c.dedupe,
    });
    this.studies = new AnswerCache({
      enabled: c.enabled,
      ttlSeconds: c.studyTtlSeconds,
      maxKeys: c.maxKeys,
      dedupe: c.dedupe,
    });
    this.detailBatches = new AnswerCache({ enabled: false, ttlSeconds: 1, maxKeys: 10, dedupe: c.dedupe });
  }

  caches(): Record<string, AnswerCache<unknown>> {
    return { 'api-studies': this.studies } as Record<string, AnswerCache<unknown>>;
  }

  close(): void {
    for (const c of [this.scans, this.studies]) c.close();
  }

  read(studyUid: string): Promise<FoundStudy | null> {
    return this.readLive(studyUid);
  }

  search(req: SearchRequest): Promise<StudyPage> {
    return this.searchLive(req);
  }

  count(criteria: Criterion[]): Promise<number> {
    return this.countLive(criteria);
  }

  private async readLive(studyUid: string): Promise<FoundStudy | null> {
    for (const src of this.searchSources) {
      let rows: DicomDataset[];
      try {
        rows = await src.pacs.searchStudies({ StudyInstanceUID: studyUid }, { limit: 2, offset: 0 });
      } catch (err) {
        throw this.failed(err, src);
      }
      const row = rows.find((r) => studyUidOf(r) === studyUid);
      if (!row) continue;
      const mapped = await this.mapPage(src, [row], true);
      if (mapped.problems.length)
        throw new FhirError(
          500,
          'processing',
          mapped.problems[0].diagnostics ?? 'The study cannot be represented as an ImagingStudy.',
        );
      const resource = mapped.resources[0];
      return resource ? { sourceId: src.config.id, resource } : null;
    }
    return null;
  }

  /**
   * The criteria for one source, with `series` resolved to the studies holding those series: one
   * series-level query per criterion (UID-list matching), or one per UID where the PACS lacks it.
   */
  private async criteriaFor(src: ApiSource, criteria: Criterion[]): Promise<Criterion[]> {
    const series = criteria.filter((c): c is Extract<Criterion, { kind: 'series' }> => c.kind === 'series');
    if (!series.length) return criteria;
    const extra: Criterion[] = [];
    for (const c of series) {
      const groups = c.uids.length > 1 && !(await this.uidListSupported(src)) ? c.uids.map((u) => [u]) : [c.uids];
      let rows: DicomDataset[];
      try {
        // A series belongs to one study; twice the UIDs leaves room for a PACS holding duplicates.
        const answers = await Promise.all(
          groups.map((g) =>
            src.pacs.searchSeries({ SeriesInstanceUID: g.join(',') }, { limit: g.length * 2, offset: 0 }),
          ),
        );
        rows = answers.flat();
      } catch (err) {
        throw this.failed(err, src);
      }
      const uids = [...new Set(rows.map((r) => studyUidOf(r)).filter((u): u is string => !!u))];
      extra.push({ param: 'series', kind: 'studyUid', uids });
    }
    return [...criteria, ...extra];
  }

  /**
   * A live page. Each source's matches are listed first from study-level rows alone (cheap: no series),
   * so filtering on what the PACS is not asked (modality, exact case, systems) happens before the page
   * is counted; then only the page's studies are fetched in detail. A source whose candidates fit in
   * `maxCountScan` rows is listed whole, in id order (as store mode orders), which makes `total` and
   * the `next` link exact; a larger one is read in PACS order from a row position, and `next` then
   * means more may exist.
   */
  private async searchLive(req: SearchRequest): Promise<StudyPage> {
    const scans = await this.scanAll(req.criteria);
    const page: StudyPage = { studies: [], problems: scans.flatMap((s, i) => this.listingWarnings(s, i)) };
    // A total only when it is exact: every source listed whole, none of it truncated by the PACS.
    if (scans.every((s) => s.complete && !s.truncated)) page.total = scans.reduce((n, s) => n + s.candidates.length, 0);
    const next = await walkSources(req.cursor, scans.length, async (i, offset): Promise<SourcePart> => {
      const scan = scans[i];
      if (!scan.plan) return { end: 0 };
      const src = this.searchSources[i];
      const need = req.count - page.studies.length;
      if (scan.keyless)
        page.problems.push({
          severity: 'warning',
          code: 'processing',
          diagnostics: `The PACS "${src.config.id}" returned ${scan.keyless} studies without a Study Instance UID; they are left out.`,
        });
      const taken = scan.complete
        ? this.fromList(scan.candidates, offset, need)
        : await this.fromPacs(src, scan.plan.match, scan.criteria, offset, need);
      await this.addMatches(page, src, scan, taken.rows);
      return taken.next !== undefined ? { next: taken.next } : { end: taken.end };
    });
    if (next) page.next = next;
    return page;
  }

  /** Why a source's listing may miss studies, as warnings for the Bundle (none when it is whole). */
  private listingWarnings(scan: SourceScan, i: number): OperationOutcomeIssue[] {
    const src = this.searchSources[i];
    const limit = src.config.serverLimit;
    const id = src.config.id;
    if (scan.truncated?.length)
      return [
        {
          severity: 'warning',
          code: 'incomplete',
          diagnostics:
            `The PACS "${id}" truncates this search (${scan.truncated.join('; ')}) even split as far as it can be: ` +
            'studies may be missing and the total is unknown; narrow the search (a closed date range can be split).',
        },
      ];
    // Read page by page in PACS order: a PACS capping whole searches stops at its cap without saying so.
    if (!scan.complete && scan.plan && limit !== undefined)
      return [
        {
          severity: 'warning',
          code: 'incomplete',
          diagnostics:
            `More than ${this.cfg.maxCountScan} studies match at the PACS "${id}", which caps searches at ${limit} ` +
            'results: studies past that may be missing; narrow the search.',
        },
      ];
    return [];
  }

  /** Up to `need` candidates of a complete list from `offset`; `next` when more remain. */
  private fromList(list: DicomDataset[], offset: number, need: number) {
    const rows = list.slice(offset, offset + need);
    const after = offset + rows.length;
    return { rows, next: after < list.length ? after : undefined, end: list.length };
  }

  /**
   * Up to `need` candidates read from the PACS from row `offset`, one more to know whether another
   * follows; at most `maxCountScan` rows per page, after which `next` resumes where reading stopped.
   */
  private async fromPacs(src: ApiSource, match: QidoMatch, criteria: Criterion[], offset: number, need: number) {
    const found: { row: DicomDataset; at: number }[] = [];
    const size = src.config.pageSize;
    let at = offset;
    for (;;) {
      if (at - offset >= this.cfg.maxCountScan) break;
      const rows = await this.pacsPage(src, match, size, at);
      for (const [k, row] of rows.entries()) {
        if (!this.studyLevelMatch(src, row, criteria)) continue;
        found.push({ row, at: at + k });
        if (found.length > need) return { rows: found.slice(0, need).map((f) => f.row), next: found[need].at, end: 0 };
      }
      at += rows.length;
      if (rows.length < size) return { rows: found.map((f) => f.row), next: undefined, end: at };
    }
    return { rows: found.map((f) => f.row), next: at, end: 0 };
  }

  /** Maps a page's candidates with their series and keeps the exact matches (series criteria included). */
  private async addMatches(page: StudyPage, src: ApiSource, scan: SourceScan, rows: DicomDataset[]) {
    if (!rows.length) return;
    const mapped = await this.mapPage(src, rows, this.cfg.searchInstances, scan.plan?.match.PatientID);
    page.problems.push(...mapped.problems);
    const ctx = matchContextFor(src.config);
    for (const resource of mapped.resources)
      if (matchesAll(resource, scan.criteria, ctx))
        page.studies.push({ sourceId: src.config.id, resource: withHolders(resource, scan.alsoIn) });
  }

  private async pacsPage(src: ApiSource, match: QidoMatch, limit: number, offset: number): Promise<DicomDataset[]> {
    try {
      return await src.pacs.searchStudies(match, { limit, offset });
    } catch (err) {
      throw this.failed(err, src);
    }
  }

  /**
   * Whether a study-level row can match: mapped without its series, so series-level criteria pass
   * (match.ts). A row the mapper refuses stays a candidate, to be reported as a problem with its page.
   */
  private studyLevelMatch(src: ApiSource, row: DicomDataset, criteria: Criterion[]): boolean {
    const r = mapStudy({ study: row, series: [], instances: [] }, src.config);
    return !r.ok || matchesAll(r.imagingStudy, criteria, { ...matchContextFor(src.config), studyLevelOnly: true });
  }

  /**
   * Every search source's scan, in order; a study already listed by an earlier source is left out there, and
   * answered by the first source listing it with the later ones' Endpoints too (one study, one ImagingStudy).
   */
  private async scanAll(criteria: Criterion[]): Promise<SourceScan[]> {
    const scans: SourceScan[] = [];
    const firstScan = new Map<string, SourceScan>();
    for (const src of this.searchSources) {
      const scan = await this.scans.getOrLoad(`scan|${src.config.id}|${JSON.stringify(criteria)}`, () =>
        this.scanSource(src, criteria),
      );
      if (!scan.complete) {
        scans.push(scan);
        continue;
      }
      const own: DicomDataset[] = [];
      for (const row of scan.candidates) {
        const uid = studyUidOf(row) ?? '';
        const first = firstScan.get(uid);
        if (!first) own.push(row);
        else {
          const id = imagingStudyId(uid);
          (first.alsoIn ??= new Map()).set(id, [...(first.alsoIn.get(id) ?? []), src.config.id]);
        }
      }
      const mine: SourceScan = { ...scan, candidates: own, alsoIn: undefined };
      for (const row of own) firstScan.set(studyUidOf(row) ?? '', mine);
      scans.push(mine);
    }
    return scans;
  }

  /** One source's candidates in id order, when they fit in `maxCountScan` rows. */
  private async scanSource(src: ApiSource, all: Criterion[]): Promise<SourceScan> {
    const criteria = await this.criteriaFor(src, all);
    const plan = qidoPlanFor(criteria, src.config);
    if (!plan) return { criteria, complete: true, candidates: [] };
    if (plan.uidList && !(await this.uidListSupported(src))) {
      throw new FhirError(
        400,
        'not-supported',
        `The PACS "${src.config.id}" cannot look up several Study Instance UIDs in one query; ask for one id at a time.`,
      );
    }
    // The sync's listing: paged, and split by date and time where the PACS truncates (serverLimit).
    let listing;
    try {
      listing = await src.pacs.listStudies(plan.match, { maxStudies: this.cfg.maxCountScan });
    } catch (err) {
      if (err instanceof WindowOverflowError) return { criteria, plan, complete: false, candidates: [] };
      throw this.failed(err, src);
    }
    const byUid = new Map<string, DicomDataset>();
    let keyless = 0;
    for (const row of listing.datasets) {
      const uid = studyUidOf(row);
      // Rows without a UID cannot be ordered or read: counted and reported, never dropped silently.
      if (!uid) keyless++;
      else if (!byUid.has(uid) && this.studyLevelMatch(src, row, criteria)) byUid.set(uid, row);
    }
    const candidates = [...byUid.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, row]) => row);
    const truncated = listing.truncated.length ? { truncated: listing.truncated } : {};
    return { criteria, plan, complete: true, candidates, ...(keyless ? { keyless } : {}), ...truncated };
  }

  private async countLive(criteria: Criterion[]): Promise<number> {
    const scans = await this.scanAll(criteria);
    if (scans.some((s) => !s.complete))
      throw new FhirError(
        400,
        'too-costly',
        `More than ${this.cfg.maxCountScan} studies would have to be counted; narrow the search.`,
      );
    const truncated = scans.findIndex((s) => s.truncated?.length);
    if (truncated >= 0)
      throw new FhirError(
        400,
        'incomplete',
        `The PACS "${this.searchSources[truncated].config.id}" truncates this search; the studies cannot be counted. Narrow the search.`,
      );
    return scans.reduce((n, s) => n + s.candidates.length, 0);
  }

  private async uidListSupported(src: ApiSource): Promise<boolean> {
    try {
      return await src.pacs.supportsUidListMatching();
    } catch (err) {
      throw this.failed(err, src);
    }
  }

  /**
   * Maps study rows with their series (and instances): cached studies are reused, the rest fetched
   * in one batched detail call. Results keep the rows' order.
   */
  private async mapPage(
    src: ApiSource,
    rows: DicomDataset[],
    instances: boolean,
    patientId?: string,
  ): Promise<{ resources: ImagingStudy[]; problems: OperationOutcomeIssue[] }> {
    const keyOf = (uid: string) => `study|${src.config.id}|${uid}|${instances ? 'i' : 's'}`;
    const problems: OperationOutcomeIssue[] = [];
    const entries = rows.map((row) => ({ row, uid: studyUidOf(row) }));
    if (entries.some((e) => !e.uid))
      problems.push({
        severity: 'warning',
        code: 'processing',
        diagnostics: 'The PACS returned a study without a Study Instance UID; it is left out.',
      });
    const found = new Map<string, ImagingStudy>();
    const missing: { row: DicomDataset; uid: string }[] = [];
    for (const e of entries) {
      if (!e.uid) continue;
      const cached = this.studies.get(keyOf(e.uid));
      if (cached) found.set(e.uid, cached);
      else missing.push({ row: e.row, uid: e.uid });
    }
    if (missing.length) {
      const uids = missing.map((m) => m.uid);
      // Identical concurrent pages share one detail fetch.
      const mapped = await this.detailBatches.getOrLoad(
        `details|${src.config.id}|${instances}|${patientId ?? ''}|${uids.join(',')}`,
        () => this.fetchAndMap(src, missing, instances, patientId),
      );
      for (const m of missing) {
        const r = mapped.get(m.uid);
        if (typeof r === 'object') {
          found.set(m.uid, r);
          this.studies.set(keyOf(m.uid), r);
        } else
          problems.push({ severity: 'warning', code: 'processing', diagnostics: r ?? `Study ${m.uid}: no result` });
      }
    }
    const resources = entries.flatMap((e) => (e.uid && found.has(e.uid) ? [found.get(e.uid)!] : []));
    return { resources, problems };
  }

  /** The studies' series and instances in one detail fetch, each mapped, or why it is left out. */
  private async fetchAndMap(
    src: ApiSource,
    missing: { row: DicomDataset; uid: string }[],
    instances: boolean,
    patientId: string | undefined,
  ): Promise<Map<string, ImagingStudy | string>> {
    let details;
    try {
      // A patient-restricted search asks for that patient's series only, by exact ID, at every level.
      details = await src.pacs.studyDetails(
        missing.map((m) => m.uid),
        { instances, ...(patientId !== undefined ? { patientId } : {}) },
      );
    } catch (err) {
      throw this.failed(err, src);
    }
    const out = new Map<string, ImagingStudy | string>();
    for (const m of missing) {
      const d = details.get(m.uid) ?? { series: [], instances: [] };
      // A Study UID under two patients is never shown as one patient's study (the sync quarantines it).
      const conflict = detailConflict(m.uid, m.row, d);
      if (conflict) {
        this.log.warn({ sourceId: src.config.id, studyUid: m.uid, code: STUDY_UID_CONFLICT }, 'study left out');
        out.set(m.uid, conflict);
        continue;
      }
      // Part of a study is never shown as the whole of it (the sync records it failing, not written).
      const truncated = truncationOf(d, m.row);
      if (truncated) {
        this.log.warn({ sourceId: src.config.id, studyUid: m.uid, code: TRUNCATED_BY_PACS }, 'study left out');
        out.set(m.uid, `Study ${m.uid}: ${truncated}.`);
        continue;
      }
      const result = mapStudy({ study: m.row, series: d.series, instances: d.instances }, src.config);
      if (result.ok) out.set(m.uid, result.imagingStudy);
      else {
        this.log.warn({ sourceId: src.config.id, studyUid: m.uid, code: result.error.code }, 'study cannot be mapped');
        out.set(m.uid, result.error.message);
      }
    }
    return out;
  }

  private failed(err: unknown, src: ApiSource): FhirError {
    const f = pacsFailure(err, src.config.id);
    if (!(err instanceof FhirError)) {
      const e = err as Partial<PacsError>;
      this.log.warn({ sourceId: src.config.id, kind: e.kind, status: e.status }, 'PACS query failed');
    }
    return f;
  }
}

/** The study with the Endpoints of the other sources listing it too (a copy: mapped studies are cached). */
function withHolders(resource: ImagingStudy, alsoIn: Map<string, string[]> | undefined): ImagingStudy {
  const others = alsoIn?.get(resource.id ?? '');
  if (!others?.length) return resource;
  return { ...resource, endpoint: [...(resource.endpoint ?? []), ...others.map((id) => endpointReference(id))] };
}
