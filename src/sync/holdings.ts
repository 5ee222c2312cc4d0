/**
 * A study several sources hold is one ImagingStudy made of all of them. Each source's run records the study as
 * it maps it (its holding, in the store); what a sink gets is that merged with the other sources' holdings
 * (src/mapping/merge.ts), in the configured order of the sources: the first holder's study-level attributes win.
 * A study leaves FHIR only when no source holds it any more.
 */
import type { Endpoint, ImagingStudy } from 'fhir/r4';
import type { SourceConfig } from '../config';
import {
  contentHash,
  endpointFor,
  holdingsConflict,
  mergeHoldings,
  type PatientFacts,
  type SourceHolding,
} from '../mapping';
import type { Sink, StudyWrite } from '../sinks';
import type { StateStore, StudyHolding } from '../state';

/** A holding as stored: the study as the source maps it, and the patient facts it was written with. */
interface StoredHolding {
  study: ImagingStudy;
  patient?: PatientFacts;
}

/** What to write for one study: the merged resource, or why the sources cannot be one study. */
export type CombinedStudy =
  | {
      ok: true;
      imagingStudy: ImagingStudy;
      contentHash: string;
      /** The other sources holding it, with their Endpoints. */
      alsoHeldBy: { sourceId: string; endpoint: Endpoint }[];
      /** The other holdings this was made of (source and time), to tell later whether they changed. */
      basis: string;
      /** The first holder's patient facts, for a write no run of this source mapped (a withdrawal's). */
      patient?: PatientFacts;
    }
  | { ok: false; conflict: string };

const basisOf = (others: StudyHolding[]) => others.map((h) => `${h.sourceId}@${h.updatedAt}`).join(',');

export class StudyHoldings {
  private readonly order: Map<string, number>;
  private readonly endpoints: Map<string, Endpoint>;

  /** `sources`: every configured source, in priority order. */
  constructor(
    private readonly store: Pick<StateStore, 'holdings'>,
    sources: SourceConfig[],
  ) {
    this.order = new Map(sources.map((s, i) => [s.id, i]));
    this.endpoints = new Map(sources.map((s) => [s.id, endpointFor(s)]));
  }

  /** Each mapped study of `sourceId` combined with what the other configured sources hold of it. */
  async combine(
    sourceId: string,
    mapped: { studyUid: string; imagingStudy: ImagingStudy; contentHash: string }[],
  ): Promise<Map<string, CombinedStudy>> {
    const held = await this.othersOf(
      sourceId,
      mapped.map((m) => m.studyUid),
    );
    const out = new Map<string, CombinedStudy>();
    for (const m of mapped)
      out.set(m.studyUid, this.merged(m.studyUid, { sourceId, ...m }, held.get(m.studyUid) ?? []));
    return out;
  }

  /** Records the studies as this source maps them (after they were written). */
  async record(
    sourceId: string,
    studies: { studyUid: string; imagingStudy: ImagingStudy; patient?: PatientFacts }[],
  ): Promise<void> {
    if (!studies.length) return;
    const json = (s: (typeof studies)[number]): string =>
      JSON.stringify({ study: s.imagingStudy, ...(s.patient ? { patient: s.patient } : {}) } satisfies StoredHolding);
    await this.store.holdings.record(
      sourceId,
      studies.map((s) => ({ studyUid: s.studyUid, json: json(s) })),
    );
  }

  /**
   * The studies whose other holdings changed since they were combined: another source wrote the same study
   * meanwhile, so what was written may lack it. Each run records its holding before it checks, so of two runs
   * writing one study at once, the later to check sees the other and writes again.
   */
  async changedSince(sourceId: string, combined: Map<string, CombinedStudy>): Promise<string[]> {
    const uids = [...combined.keys()];
    if (!uids.length) return [];
    const now = await this.othersOf(sourceId, uids);
    return uids.filter((uid) => {
      const c = combined.get(uid)!;
      return c.ok && c.basis !== basisOf(now.get(uid) ?? []);
    });
  }

  /**
   * This source no longer holds the study: its holding is released, and the study as the other sources hold it
   * is returned (to write), or undefined when none does (to remove).
   */
  async withdraw(sourceId: string, studyUid: string): Promise<(CombinedStudy & { sourceId: string }) | undefined> {
    await this.store.holdings.release(sourceId, studyUid);
    const [first, ...rest] = (await this.othersOf(sourceId, [studyUid])).get(studyUid) ?? [];
    if (!first) return undefined;
    const { study, patient } = parse(first);
    const combined = this.merged(studyUid, { sourceId: first.sourceId, imagingStudy: study }, rest);
    return { ...combined, ...(combined.ok && patient ? { patient } : {}), sourceId: first.sourceId };
  }

  endpointOf(sourceId: string): Endpoint | undefined {
    return this.endpoints.get(sourceId);
  }

  /** The holdings of these studies by configured sources other than `sourceId`, in priority order. */
  private async othersOf(sourceId: string, studyUids: string[]): Promise<Map<string, StudyHolding[]>> {
    // With one source configured there are no others to read (holdings of unconfigured sources never count).
    if (this.order.size < 2) return new Map();
    const all = await this.store.holdings.of(studyUids);
    const out = new Map<string, StudyHolding[]>();
    for (const [uid, holdings] of all) {
      // A source no longer configured holds nothing the bridge can vouch for.
      const others = holdings.filter((h) => h.sourceId !== sourceId && this.order.has(h.sourceId));
      if (others.length)
        out.set(
          uid,
          others.sort((a, b) => this.order.get(a.sourceId)! - this.order.get(b.sourceId)!),
        );
    }
    return out;
  }

  /** `own.contentHash`: the mapper's hash, when known; it is the resource's while no other source holds the study. */
  private merged(
    studyUid: string,
    own: SourceHolding & { contentHash?: string },
    others: StudyHolding[],
  ): CombinedStudy {
    const all = [own, ...others.map((h) => ({ sourceId: h.sourceId, imagingStudy: parse(h).study }))].sort(
      (a, b) => (this.order.get(a.sourceId) ?? Infinity) - (this.order.get(b.sourceId) ?? Infinity),
    );
    const conflict = holdingsConflict(studyUid, all);
    if (conflict) return { ok: false, conflict };
    const imagingStudy = mergeHoldings(all);
    return {
      ok: true,
      imagingStudy,
      contentHash: !others.length && own.contentHash ? own.contentHash : contentHash(imagingStudy),
      alsoHeldBy: others.map((h) => ({ sourceId: h.sourceId, endpoint: this.endpoints.get(h.sourceId)! })),
      basis: basisOf(others),
    };
  }
}

function parse(h: StudyHolding): StoredHolding {
  return JSON.parse(h.json) as StoredHolding;
}

/**
 * This source no longer holds the study (it vanished, or is quarantined): the study is written again as the other
 * sources hold it, or, when none does, removed in every sink (`action`). `kept`: the others disagree on the
 * patient, so it is left as written (their own runs quarantine it).
 */
export async function withdrawStudy(
  ctx: { holdings: StudyHoldings; sinks: Sink[]; sourceId: string },
  studyUid: string,
  action: 'entered-in-error' | 'delete',
): Promise<'removed' | 'rewritten' | 'kept'> {
  const rest = await ctx.holdings.withdraw(ctx.sourceId, studyUid);
  if (!rest) {
    for (const sink of ctx.sinks) await sink.removeStudy(ctx.sourceId, studyUid, action);
    return 'removed';
  }
  if (!rest.ok) return 'kept';
  const write: StudyWrite = {
    sourceId: rest.sourceId,
    studyUid,
    imagingStudy: rest.imagingStudy,
    endpoint: ctx.holdings.endpointOf(rest.sourceId)!,
    contentHash: rest.contentHash,
    ...(rest.patient ? { patient: rest.patient } : {}),
    ...(rest.alsoHeldBy.length ? { alsoHeldBy: rest.alsoHeldBy } : {}),
  };
  for (const sink of ctx.sinks) {
    const [outcome] = await sink.writeBatch([write]);
    if (!outcome?.ok) throw new Error(`${sink.name}: ${outcome ? outcome.error : 'no outcome'}`);
  }
  return 'rewritten';
}
