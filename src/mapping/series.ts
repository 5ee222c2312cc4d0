/**
 * Series and instance level: QIDO-RS series and instance results → ImagingStudy.series[], ordered by
 * number then UID so the same input always gives the same bytes.
 */
import type { ImagingStudySeries, ImagingStudySeriesInstance, ImagingStudySeriesPerformer, Coding } from 'fhir/r4';
import { DicomReader, isDataset, type DicomDataset, Tag, describeTag } from '../dicom';
import { asCode, modalityCoding } from './codes';
import { fhirDateTime, isFhirOffset, type ZoneRule } from './datetime';
import { isFhirId } from './ids';
import { personNameText, type NameGroup } from './names';
import { BODY_PART_SNOMED } from './terminology/bodyParts';
import { SYSTEM } from './terminology/codeSystems';
import { LATERALITY_SNOMED, PERFORMER_FUNCTION } from './terminology/laterality';
import { SOP_CLASS_NAMES } from './terminology/sopClasses';
import type { MappingError } from './types';
import type { WarningList } from './warnings';

export interface SeriesContext {
  studyUid: string;
  /** Offset or zone rule for series without their own Timezone Offset From UTC. */
  studyOffset: number | ZoneRule | undefined;
  nameGroup: NameGroup;
  includeInstances: boolean;
  /** What a series without Modality gets: the typed error, or the code OT with a warning. */
  missingModality: 'error' | 'OT';
  warnings: WarningList;
}

export interface SeriesOutcome {
  series: ImagingStudySeries[];
  /** Distinct series found in the results (after merging duplicates and series known only from instances). */
  seriesCount: number;
  /** Instances found in the instance results (distinct UIDs). */
  instanceCount: number;
  /** Sum of the series' own counts (0020,1209) where every series has one. */
  seriesInstanceTotal?: number;
  /** Modalities seen at series level (as the PACS gave them). */
  modalities: string[];
  /** The code given to series that had no Modality, when any did (the study lists it too). */
  defaultedModality?: string;
}

type Outcome = { ok: true; value: SeriesOutcome } | { ok: false; error: MappingError };

interface SeriesEntry {
  uid: string;
  ds: DicomDataset;
  reader: DicomReader;
  instances: Map<string, { ds: DicomDataset; reader: DicomReader }>;
}

/** FHIR unsignedInt: 0 … 2^31-1. */
function asUnsignedInt(n: number | undefined): number | undefined {
  return n !== undefined && Number.isInteger(n) && n >= 0 && n <= 2147483647 ? n : undefined;
}

function fail(ctx: SeriesContext, code: MappingError['code'], tag: string, message: string): Outcome {
  return { ok: false, error: { studyUid: ctx.studyUid, tag, code, message: `Study ${ctx.studyUid}: ${message}` } };
}

/** Items of a result list that belong to this study; anything else is reported and skipped. */
function ownItems(ctx: SeriesContext, items: unknown, level: 'series' | 'instance'): DicomDataset[] {
  if (items === undefined || items === null) return [];
  if (!Array.isArray(items)) {
    ctx.warnings.add('bad-results', `${level} results are not a list; ignored`);
    return [];
  }
  const out: DicomDataset[] = [];
  items.forEach((item, i) => {
    if (!isDataset(item)) {
      ctx.warnings.add('bad-results', `${level} result #${i + 1} is not an object; ignored`);
      return;
    }
    const studyUid = new DicomReader(item).string(Tag.StudyInstanceUID);
    if (studyUid !== undefined && studyUid !== ctx.studyUid) {
      ctx.warnings.add(
        'foreign-result',
        `${level} result #${i + 1} belongs to study ${studyUid}; ignored`,
        Tag.StudyInstanceUID,
      );
      return;
    }
    out.push(item);
  });
  return out;
}

type Entries = Map<string, SeriesEntry>;

/** The study's series from the series results, first of each UID; a failure when one has no usable UID. */
function collectSeries(ctx: SeriesContext, seriesResults: unknown, entries: Entries): Outcome | undefined {
  for (const [i, ds] of ownItems(ctx, seriesResults, 'series').entries()) {
    const reader = new DicomReader(ds);
    const uid = reader.string(Tag.SeriesInstanceUID);
    if (!uid)
      return fail(
        ctx,
        'series-missing-uid',
        Tag.SeriesInstanceUID,
        `series result #${i + 1} has no ${describeTag(Tag.SeriesInstanceUID)}`,
      );
    if (!isFhirId(uid))
      return fail(
        ctx,
        'series-invalid-uid',
        Tag.SeriesInstanceUID,
        `series UID "${uid.slice(0, 80)}" is not a valid FHIR id (letters, digits, "-", ".", at most 64)`,
      );
    if (entries.has(uid)) {
      ctx.warnings.add(
        'duplicate-series',
        `series ${uid} appears more than once in the series results; the first is used`,
        Tag.SeriesInstanceUID,
      );
      continue;
    }
    entries.set(uid, { uid, ds, reader, instances: new Map() });
  }
  return undefined;
}

/** The instance's UID, or the failure its missing UID or SOP Class means. */
function instanceUid(ctx: SeriesContext, reader: DicomReader, i: number): string | Outcome {
  const uid = reader.string(Tag.SOPInstanceUID);
  if (!uid)
    return fail(
      ctx,
      'instance-missing-uid',
      Tag.SOPInstanceUID,
      `instance result #${i + 1} has no ${describeTag(Tag.SOPInstanceUID)}`,
    );
  if (!isFhirId(uid))
    return fail(
      ctx,
      'instance-invalid-uid',
      Tag.SOPInstanceUID,
      `instance UID "${uid.slice(0, 80)}" is not a valid FHIR id`,
    );
  if (!reader.string(Tag.SOPClassUID))
    return fail(
      ctx,
      'instance-missing-sop-class',
      Tag.SOPClassUID,
      `instance ${uid} has no ${describeTag(Tag.SOPClassUID)}`,
    );
  return uid;
}

/**
 * The series an instance belongs to: its own Series Instance UID, or the study's only series; a series the
 * series query missed is rebuilt from the instance (QIDO instance results carry the series attributes).
 */
function seriesOfInstance(
  ctx: SeriesContext,
  entries: Entries,
  uid: string,
  ds: DicomDataset,
  reader: DicomReader,
): SeriesEntry | Outcome | undefined {
  let seriesUid = reader.string(Tag.SeriesInstanceUID);
  if (!seriesUid) {
    if (entries.size !== 1) {
      ctx.warnings.add(
        'instance-without-series',
        `instance ${uid} has no ${describeTag(Tag.SeriesInstanceUID)} and the study has ${entries.size} series; left out`,
        Tag.SeriesInstanceUID,
      );
      return undefined;
    }
    seriesUid = [...entries.keys()][0];
  }
  const known = entries.get(seriesUid);
  if (known) return known;
  if (!isFhirId(seriesUid))
    return fail(
      ctx,
      'series-invalid-uid',
      Tag.SeriesInstanceUID,
      `series UID "${seriesUid.slice(0, 80)}" (from instance ${uid}) is not a valid FHIR id`,
    );
  ctx.warnings.add(
    'series-from-instances',
    `series ${seriesUid} is missing from the series results; built from its instances`,
    Tag.SeriesInstanceUID,
  );
  const entry = { uid: seriesUid, ds, reader: new DicomReader(ds), instances: new Map() };
  entries.set(seriesUid, entry);
  return entry;
}

/** Files each instance under its series; returns how many instance results there were, or a failure. */
function attachInstances(ctx: SeriesContext, instanceResults: unknown, entries: Entries): number | Outcome {
  const items = ownItems(ctx, instanceResults, 'instance');
  for (const [i, ds] of items.entries()) {
    const reader = new DicomReader(ds);
    const uid = instanceUid(ctx, reader, i);
    if (typeof uid !== 'string') return uid;
    const entry = seriesOfInstance(ctx, entries, uid, ds, reader);
    if (!entry) continue;
    if ('ok' in entry) return entry;
    if (entry.instances.has(uid)) {
      ctx.warnings.add(
        'duplicate-instance',
        `instance ${uid} appears more than once; the first is used`,
        Tag.SOPInstanceUID,
      );
      continue;
    }
    entry.instances.set(uid, { ds, reader });
  }
  return items.length;
}

/** The series' Modality, or OT when the source maps a missing one so (never silently); undefined means fail. */
function modalityOf(ctx: SeriesContext, entry: SeriesEntry): { code: string; defaulted: boolean } | undefined {
  const modality = entry.reader.string(Tag.Modality);
  if (modality) return { code: modality, defaulted: false };
  if (ctx.missingModality === 'error') return undefined;
  // Configured fallback (e.g. Secondary Capture files that omit the Type 1 Modality).
  ctx.warnings.add(
    'series-modality-defaulted',
    `series ${entry.uid} has no ${describeTag(Tag.Modality)}; mapped as ${ctx.missingModality} (Other) by the source's mapping.missingModality`,
    Tag.Modality,
  );
  return { code: ctx.missingModality, defaulted: true };
}

export function mapSeries(ctx: SeriesContext, seriesResults: unknown, instanceResults: unknown): Outcome {
  const w = ctx.warnings;
  const entries: Entries = new Map();
  const seriesFailure = collectSeries(ctx, seriesResults, entries);
  if (seriesFailure) return seriesFailure;
  const instanceResultCount = attachInstances(ctx, instanceResults, entries);
  if (typeof instanceResultCount !== 'number') return instanceResultCount;

  const instancesKnown = instanceResultCount > 0;
  const series: { number?: number; uid: string; value: ImagingStudySeries }[] = [];
  const modalities = new Set<string>();
  let defaultedModality: string | undefined;
  let seriesInstanceTotal: number | undefined = 0;
  let instanceCount = 0;

  for (const entry of entries.values()) {
    const modality = modalityOf(ctx, entry);
    if (!modality)
      return fail(
        ctx,
        'series-missing-modality',
        Tag.Modality,
        `series ${entry.uid} has no ${describeTag(Tag.Modality)}`,
      );
    if (modality.defaulted) defaultedModality = modality.code;
    else modalities.add(modalityCoding(modality.code).code as string);
    const mapped = mapOneSeries(ctx, entry, modality.code, instancesKnown);
    const own = asUnsignedInt(entry.reader.integer(Tag.NumberOfSeriesRelatedInstances));
    seriesInstanceTotal =
      own !== undefined && seriesInstanceTotal !== undefined ? seriesInstanceTotal + own : undefined;
    instanceCount += entry.instances.size;
    series.push({ number: mapped.number, uid: entry.uid, value: mapped });
    w.problems(entry.reader.problems, `series ${entry.uid}`);
    for (const inst of entry.instances.values()) w.problems(inst.reader.problems, `instance in series ${entry.uid}`);
  }

  series.sort(byNumberThenUid);
  return {
    ok: true,
    value: {
      series: series.map((s) => s.value),
      seriesCount: entries.size,
      instanceCount,
      seriesInstanceTotal: entries.size ? seriesInstanceTotal : undefined,
      modalities: [...modalities],
      defaultedModality,
    },
  };
}

function byNumberThenUid(a: { number?: number; uid: string }, b: { number?: number; uid: string }): number {
  if (a.number !== b.number) {
    if (a.number === undefined) return 1;
    if (b.number === undefined) return -1;
    return a.number - b.number;
  }
  return a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0;
}

/** The offset for a level: its own Timezone Offset From UTC when valid, else the rule handed down. */
export function offsetFor(
  reader: DicomReader,
  inherited: number | ZoneRule | undefined,
  w: WarningList,
  where: string,
): number | ZoneRule | undefined {
  const own = reader.offset(Tag.TimezoneOffsetFromUTC);
  if (own === undefined) return inherited;
  if (isFhirOffset(own)) return own;
  w.add(
    'timezone-out-of-range',
    `${where}: ${describeTag(Tag.TimezoneOffsetFromUTC)} is outside ±14:00; the default time zone is used`,
    Tag.TimezoneOffsetFromUTC,
  );
  return inherited;
}

/** Date + time attributes → FHIR dateTime, reporting what had to be dropped. */
export function startedFrom(
  reader: DicomReader,
  dateTag: string,
  timeTag: string,
  offset: number | ZoneRule | undefined,
  w: WarningList,
  where: string,
): string | undefined {
  const date = reader.date(dateTag);
  const time = reader.time(timeTag);
  if (!date) {
    if (time)
      w.add(
        'time-without-date',
        `${where}: ${describeTag(timeTag)} given without ${describeTag(dateTag)}; not mapped`,
        timeTag,
      );
    return undefined;
  }
  if (date.year < 1) {
    w.add('bad-date', `${where}: ${describeTag(dateTag)} has year 0000, which FHIR cannot hold`, dateTag);
    return undefined;
  }
  const value = fhirDateTime(date, time, offset ?? { kind: 'fixed', minutes: 0 });
  if (value) return value;
  w.add('no-timezone', `${where}: no UTC offset found for the time; only the date is kept`, timeTag);
  return fhirDateTime(date, undefined, 0);
}

function performers(reader: DicomReader, nameGroup: NameGroup): ImagingStudySeriesPerformer[] {
  const out: ImagingStudySeriesPerformer[] = [];
  const add = (tag: string, fn: { code: string; display: string }) => {
    const seen = new Set<string>();
    for (const name of reader.personNames(tag) ?? []) {
      const display = personNameText(name, nameGroup);
      if (!display || seen.has(display)) continue;
      seen.add(display);
      out.push({
        function: { coding: [{ system: SYSTEM.participationType, code: fn.code, display: fn.display }] },
        actor: { display },
      });
    }
  };
  add(Tag.PerformingPhysicianName, PERFORMER_FUNCTION.performer);
  add(Tag.OperatorsName, PERFORMER_FUNCTION.operator);
  return out;
}

function lateralityOf(entry: SeriesEntry, w: WarningList): Coding | undefined {
  let value = entry.reader.string(Tag.Laterality) ?? entry.reader.string(Tag.ImageLaterality);
  if (!value && entry.instances.size) {
    // Image Laterality is an image attribute: use it when every instance that has one agrees.
    const seen = new Set<string>();
    for (const inst of entry.instances.values()) {
      const v = inst.reader.string(Tag.ImageLaterality)?.toUpperCase();
      if (v) seen.add(v);
    }
    if (seen.size === 1) value = [...seen][0];
  }
  if (!value) return undefined;
  const key = value.toUpperCase();
  if (key === 'U') return undefined;
  const known = LATERALITY_SNOMED[key];
  if (!known) {
    w.add(
      'unknown-laterality',
      `series ${entry.uid}: laterality "${value.slice(0, 16)}" is not R, L, B or U; left out`,
      Tag.Laterality,
    );
    return undefined;
  }
  return { system: SYSTEM.snomed, code: known.code, display: known.display };
}

function bodySiteOf(entry: SeriesEntry, w: WarningList): Coding | undefined {
  const term = entry.reader.string(Tag.BodyPartExamined);
  if (!term) return undefined;
  const known = BODY_PART_SNOMED[term.toUpperCase().replace(/\s+/g, '')];
  if (known) return { system: SYSTEM.snomed, code: known.code, display: known.display };
  w.add(
    'unknown-body-part',
    `series ${entry.uid}: Body Part Examined "${term.slice(0, 32)}" has no SNOMED CT code in the table; kept as display`,
    Tag.BodyPartExamined,
  );
  return { display: term };
}

function instanceTitle(reader: DicomReader): string | undefined {
  return (
    reader.string(Tag.ContentLabel) ??
    reader.codes(Tag.ConceptNameCodeSequence)?.find((c) => c.meaning)?.meaning ??
    reader.string(Tag.DocumentTitle) ??
    reader.strings(Tag.ImageType)?.join('\\')
  );
}

function mapInstance(
  uid: string,
  reader: DicomReader,
): { number?: number; uid: string; value: ImagingStudySeriesInstance } {
  const sopClassUid = reader.string(Tag.SOPClassUID) as string;
  const sopClass: Coding = { system: SYSTEM.rfc3986, code: `urn:oid:${asCode(sopClassUid)}` };
  const name = SOP_CLASS_NAMES[sopClassUid];
  if (name) sopClass.display = name;
  const number = asUnsignedInt(reader.integer(Tag.InstanceNumber));
  const value: ImagingStudySeriesInstance = { uid, sopClass };
  if (number !== undefined) value.number = number;
  const title = instanceTitle(reader);
  if (title) value.title = title;
  return { number, uid, value };
}

function mapOneSeries(
  ctx: SeriesContext,
  entry: SeriesEntry,
  modality: string,
  instancesKnown: boolean,
): ImagingStudySeries & { modality: Coding } {
  const { reader } = entry;
  const w = ctx.warnings;
  const rawNumber = reader.integer(Tag.SeriesNumber);
  const number = asUnsignedInt(rawNumber);
  if (rawNumber !== undefined && number === undefined)
    w.add(
      'bad-number',
      `series ${entry.uid}: Series Number ${rawNumber} is negative or too large; left out`,
      Tag.SeriesNumber,
    );

  const own = asUnsignedInt(reader.integer(Tag.NumberOfSeriesRelatedInstances));
  if (instancesKnown && own !== undefined && own !== entry.instances.size) {
    w.add(
      'series-instance-count-mismatch',
      `series ${entry.uid}: the PACS counts ${own} instances, the instance results hold ${entry.instances.size}; the PACS count is used`,
      Tag.NumberOfSeriesRelatedInstances,
    );
  }
  const offset = offsetFor(reader, ctx.studyOffset, w, `series ${entry.uid}`);
  const performer = performers(reader, ctx.nameGroup);
  let instance: ImagingStudySeriesInstance[] | undefined;
  if (ctx.includeInstances && entry.instances.size) {
    const instances = [...entry.instances.entries()].map(([uid, inst]) => mapInstance(uid, inst.reader));
    instances.sort(byNumberThenUid);
    instance = instances.map((i) => i.value);
  }
  // Element order follows the FHIR definition, for readable output; undefined members are dropped later.
  return {
    uid: entry.uid,
    number,
    modality: modalityCoding(modality),
    description: reader.string(Tag.SeriesDescription),
    numberOfInstances: own ?? (instancesKnown ? entry.instances.size : undefined),
    bodySite: bodySiteOf(entry, w),
    laterality: lateralityOf(entry, w),
    started: startedFrom(reader, Tag.SeriesDate, Tag.SeriesTime, offset, w, `series ${entry.uid}`),
    performer: performer.length ? performer : undefined,
    instance,
  };
}
