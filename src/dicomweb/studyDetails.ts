/**
 * The study details of a DicomwebSource: the series and instances of many studies, several studies a
 * search by UID-list matching where the PACS supports it (probed once per source), halved when the PACS
 * truncates a batch, and a study still truncated asked for series by series.
 */
import { studyUidOf, Tag, type DicomDataset } from '../dicom';
import { addMetadata } from './metadata';
import { dedupe, type PagedResult } from './paging';
import { keyOfLevel, rowKeyOfLevel, type QueryContext } from './queryContext';
import { exactParam } from './queryEncoding';
import type { QidoLevel } from './transport';
import { PacsError, type DetailOptions, type StudyDetails } from './types';
import { halves, uidBatches } from './windows';

/** One level's rows of one study or batch, and whether the PACS left some out. */
type LevelRows = Map<string, { datasets: DicomDataset[]; truncated: boolean }>;

export class StudyDetailQueries {
  private uidListMatching: boolean | undefined;
  private probing: Promise<boolean> | undefined;

  constructor(private readonly ctx: QueryContext) {
    if (ctx.cfg.uidListMatching !== 'auto') this.uidListMatching = ctx.cfg.uidListMatching === 'on';
  }

  async studyDetails(studyUids: string[], options: DetailOptions = {}): Promise<Map<string, StudyDetails>> {
    const uids = [...new Set(studyUids)];
    const details = new Map<string, StudyDetails>(uids.map((uid) => [uid, { series: [], instances: [] }]));
    if (!uids.length) return details;
    const levels: QidoLevel[] = options.instances === false ? ['series'] : ['series', 'instances'];
    // Study-level matching keys are allowed on relational /series and /instances queries (PS3.18).
    const keys = options.patientId === undefined ? [] : [exactParam('PatientID', options.patientId, this.ctx.wire)];
    const batched = uids.length > 1 && (await this.supportsUidListMatching(options.patientId));
    const chunks = batched ? uidBatches(uids, this.ctx.cfg.detailBatchSize) : uids.map((uid) => [uid]);
    // Settled, not raced: a failure answers only once no query of this call is still going.
    const settled = await Promise.allSettled(
      chunks.flatMap((chunk) =>
        levels.map(async (level) => {
          const byStudy =
            chunk.length > 1
              ? await this.batchLevel(level, chunk, keys)
              : await this.perStudyLevel(level, chunk[0], keys);
          for (const [uid, r] of byStudy) addLevel(details.get(uid)!, level as 'series' | 'instances', r);
        }),
      ),
    );
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (options.metadata) await Promise.all(uids.map((uid) => addMetadata(this.ctx, uid, details.get(uid)!, keys)));
    return details;
  }

  /**
   * Probed once: ask for two studies known to exist by UID list; both must come back, alone. A caller
   * working for one patient passes that patient's ID, so the probe reads only that patient's studies.
   */
  supportsUidListMatching(patientId?: string): Promise<boolean> {
    if (this.uidListMatching !== undefined) return Promise.resolve(this.uidListMatching);
    const keys = patientId === undefined ? [] : [exactParam('PatientID', patientId, this.ctx.wire)];
    this.probing ??= this.probeUidListMatching(keys).finally(() => (this.probing = undefined));
    return this.probing;
  }

  private async probeUidListMatching(keys: [string, string][]): Promise<boolean> {
    const { transport } = this.ctx;
    // Default return attributes only: an explicit includefield can make Orthanc read files.
    const some = await transport.qido({ level: 'studies', params: [['limit', '2'], ...keys] });
    const known = [...new Set(some.datasets.map(studyUidOf).filter((u): u is string => !!u))].slice(0, 2);
    if (known.length < 2) return false; // nothing to probe with yet; ask again later
    let supported: boolean;
    try {
      const answer = await transport.qido({
        level: 'studies',
        params: [[Tag.StudyInstanceUID, known.join(',')], ...keys],
      });
      const back = new Set(answer.datasets.map(studyUidOf));
      supported = back.size === 2 && known.every((u) => back.has(u));
    } catch (e) {
      // A server that rejects the list (400) does not support it; anything else is a real failure.
      if (!(e instanceof PacsError) || e.kind !== 'http') throw e;
      supported = false;
    }
    this.uidListMatching = supported;
    this.ctx.logger?.debug?.({ source: this.ctx.id, uidListMatching: supported }, 'probed UID-list matching');
    return supported;
  }

  /** Series or instances of several studies in one search (UID-list matching); halves on truncation. */
  private async batchLevel(level: QidoLevel, uids: string[], keys: Array<[string, string]>): Promise<LevelRows> {
    const r = await this.ctx.paged(level, [[Tag.StudyInstanceUID, uids.join(',')], ...keys]);
    // Without a Study Instance UID on every answer they cannot be told apart: ask per study.
    const attributable = r.datasets.every((ds) => studyUidOf(ds) !== undefined);
    if (!r.truncated && attributable) {
      const byStudy: LevelRows = new Map(uids.map((u) => [u, { datasets: [], truncated: false }]));
      for (const ds of r.datasets) byStudy.get(studyUidOf(ds)!)?.datasets.push(ds);
      return byStudy;
    }
    if (uids.length === 1 || !attributable) {
      const each = await Promise.all(uids.map((u) => this.perStudyLevel(level, u, keys)));
      return new Map(each.flatMap((m) => [...m]));
    }
    this.ctx.stats.splits++;
    const [a, b] = halves(uids);
    const [ma, mb] = await Promise.all([this.batchLevel(level, a, keys), this.batchLevel(level, b, keys)]);
    return new Map([...ma, ...mb]);
  }

  /** One study's series or instances; instances still truncated are asked for series by series. */
  private async perStudyLevel(level: QidoLevel, uid: string, keys: Array<[string, string]>): Promise<LevelRows> {
    let r = await this.ctx.paged(level, keys, { studyUid: uid });
    if (r.truncated && level === 'instances') {
      this.ctx.stats.splits++;
      r = await this.instancesBySeries(uid, keys, r.datasets);
    }
    if (r.truncated)
      this.ctx.logger?.warn(
        { source: this.ctx.id, studyUid: uid, qidoLevel: level, listed: r.datasets.length },
        "PACS still truncates this study's search after narrowing it as far as possible; the study is incomplete",
      );
    return new Map([[uid, r]]);
  }

  /**
   * A study's instances one series at a time (/studies/{s}/series/{se}/instances), added to those its
   * truncated instance search returned: a PACS capping each search lists a large study this way. Still
   * truncated when a series' search is, or when the study's series cannot all be listed.
   */
  private async instancesBySeries(
    uid: string,
    keys: Array<[string, string]>,
    listed: DicomDataset[],
  ): Promise<PagedResult> {
    const series = await this.ctx.paged('series', keys, { studyUid: uid });
    const seriesUids = [...new Set(series.datasets.map(keyOfLevel.series).filter((u): u is string => !!u))];
    const each = await Promise.all(
      seriesUids.map((se) => this.ctx.paged('instances', keys, { studyUid: uid, seriesUid: se })),
    );
    const datasets = dedupe([...listed, ...each.flatMap((r) => r.datasets)], rowKeyOfLevel.instances);
    return { datasets, truncated: series.truncated || each.some((r) => r.truncated) };
  }
}

/** Adds one level's rows to a study's details, marking the level truncated when the PACS left some out. */
function addLevel(
  d: StudyDetails,
  level: 'series' | 'instances',
  r: { datasets: DicomDataset[]; truncated: boolean },
): void {
  d[level].push(...r.datasets);
  if (r.truncated && !d.truncated?.includes(level)) d.truncated = [...(d.truncated ?? []), level];
}
