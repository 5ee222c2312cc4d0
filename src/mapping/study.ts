/**
 * Study level: one study's QIDO-RS results → a TW Core ImagingStudy. Pure; never throws (a bug in here
 * becomes an `internal-error` for that study, not a crash of the sync).
 */
import type { CodeableConcept, Identifier, ImagingStudy, Reference } from 'fhir/r4';
import { DicomReader, isDataset, type DicomDataset, Tag, describeTag } from '../dicom';
import type { SourceConfig } from '../config';
import { contentHash } from './canonical';
import { codeableConcept, modalityCoding } from './codes';
import { zoneRuleFor, type ZoneRule } from './datetime';
import { endpointFor, endpointReference } from './endpoint';
import { withMetadata } from './enrich';
import { imagingStudyId, isDicomUid, isFhirId } from './ids';
import { personNameText, type NameGroup } from './names';
import { resolvePatientIdentifier, subjectReference, universalEntitySystem } from './patient';
import { prune } from './prune';
import { mapSeries, offsetFor, startedFrom, type SeriesOutcome } from './series';
import { structuralIssues } from './structural';
import { SYSTEM, TWCORE_IMAGING_STUDY_PROFILE } from './terminology/codeSystems';
import type { MapResult, MappingError, StudyResults } from './types';
import { WarningList } from './warnings';

export interface MapOptions {
  /** A resolved `Patient/<id>` for subject (mode "resolved", or any mode when the caller already knows it). */
  patientReference?: string;
}

function failure(error: MappingError, warnings: WarningList): MapResult {
  return { ok: false, error, warnings: warnings.items };
}

export function mapStudy(results: StudyResults, source: SourceConfig, options: MapOptions = {}): MapResult {
  const warnings = new WarningList();
  try {
    return mapStudyOrFail(withMetadata(results), source, options, warnings);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return failure(
      {
        studyUid: warnings.studyUid,
        tag: '',
        code: 'internal-error',
        message: `Study ${warnings.studyUid ?? '(unknown)'}: mapper failed: ${message}`,
      },
      warnings,
    );
  }
}

/** Accession Number with its issuer: Issuer of Accession Number Sequence, else the source's accession system. */
function accessionIdentifier(reader: DicomReader, accessionSystem: string | undefined): Identifier | undefined {
  const value = reader.string(Tag.AccessionNumber);
  if (!value) return undefined;
  const issuer = reader.sequence(Tag.IssuerOfAccessionNumberSequence)?.[0];
  const system = (issuer && universalEntitySystem(issuer)) ?? accessionSystem;
  const local = issuer ? new DicomReader(issuer).string(Tag.LocalNamespaceEntityID) : undefined;
  const id: Identifier = {
    use: 'usual',
    type: { coding: [{ system: SYSTEM.v2_0203, code: 'ACSN', display: 'Accession ID' }] },
  };
  if (system) id.system = system;
  id.value = value;
  if (local && !system) id.assigner = { display: local };
  return id;
}

/** Modalities in Study, split where a server joined them with "\" into one value. */
function studyModalities(reader: DicomReader): string[] {
  const values = reader.strings(Tag.ModalitiesInStudy) ?? [];
  return values
    .flatMap((v) => v.split('\\'))
    .map((v) => v.trim().toUpperCase())
    .filter(Boolean);
}

/** The study dataset and its Study Instance UID, or why the study cannot be mapped at all. */
function readStudy(
  results: StudyResults,
  w: WarningList,
): { study: DicomDataset; reader: DicomReader; studyUid: string } | MappingError {
  const study = isDataset(results) && isDataset(results.study) ? results.study : undefined;
  if (!study)
    return {
      tag: Tag.StudyInstanceUID,
      code: 'missing-study-uid',
      message: 'The study result is not a DICOM JSON object, so it has no Study Instance UID (0020,000D)',
    };
  const reader = new DicomReader(study);
  const studyUid = reader.string(Tag.StudyInstanceUID);
  if (!studyUid) {
    w.problems(reader.problems);
    return {
      tag: Tag.StudyInstanceUID,
      code: 'missing-study-uid',
      message: `The study result has no ${describeTag(Tag.StudyInstanceUID)}`,
    };
  }
  w.studyUid = studyUid;
  if (!isFhirId(studyUid))
    return {
      studyUid,
      tag: Tag.StudyInstanceUID,
      code: 'invalid-study-uid',
      message: `Study ${studyUid.slice(0, 80)}: ${describeTag(Tag.StudyInstanceUID)} is not a UID (digits and dots, at most 64 characters)`,
    };
  if (!isDicomUid(studyUid))
    w.add(
      'nonconformant-uid',
      `Study Instance UID ${studyUid} does not follow the DICOM UID rules (PS3.5 §9.1); used as given`,
      Tag.StudyInstanceUID,
    );
  return { study, reader, studyUid };
}

/** The study's UTC offset: its own Timezone Offset From UTC, else the source's default zone. */
function studyOffsetOf(reader: DicomReader, source: SourceConfig, w: WarningList): number | ZoneRule | undefined {
  const defaultZone = zoneRuleFor(source.defaultTimezone ?? 'Asia/Taipei');
  if (!defaultZone)
    w.add(
      'bad-default-timezone',
      `source ${source.id}: default time zone "${source.defaultTimezone}" is unusable; times without an offset keep their date only`,
    );
  return offsetFor(reader, defaultZone, w, 'study');
}

/** Counts: the PACS's study totals win (the resource may list only part of a study); disagreements are recorded. */
function studyCounts(
  reader: DicomReader,
  s: SeriesOutcome,
  w: WarningList,
): { numberOfSeries?: number; numberOfInstances?: number } {
  const pacsSeries = reader.integer(Tag.NumberOfStudyRelatedSeries);
  const pacsInstances = reader.integer(Tag.NumberOfStudyRelatedInstances);
  const seriesKnown = s.seriesCount > 0;
  const computedInstances = s.instanceCount > 0 ? s.instanceCount : s.seriesInstanceTotal;
  if (pacsSeries !== undefined && seriesKnown && pacsSeries !== s.seriesCount) {
    w.add(
      'series-count-mismatch',
      `the PACS counts ${pacsSeries} series, the series results hold ${s.seriesCount}; the PACS count is used`,
      Tag.NumberOfStudyRelatedSeries,
    );
  }
  if (pacsInstances !== undefined && computedInstances !== undefined && pacsInstances !== computedInstances) {
    w.add(
      'instance-count-mismatch',
      `the PACS counts ${pacsInstances} instances, the results hold ${computedInstances}; the PACS count is used`,
      Tag.NumberOfStudyRelatedInstances,
    );
  }
  return {
    numberOfSeries: validCount(pacsSeries) ?? (seriesKnown ? s.seriesCount : undefined),
    numberOfInstances: validCount(pacsInstances) ?? computedInstances,
  };
}

/**
 * Modalities in Study, else the union of the series modalities; a defaulted series code is added either
 * way (the PACS cannot list a modality its series lack), its warning already given.
 */
function modalitiesOf(reader: DicomReader, s: SeriesOutcome, w: WarningList): string[] {
  const listed = studyModalities(reader);
  const missing = s.modalities.filter((m) => listed.length && !listed.includes(m));
  if (missing.length)
    w.add(
      'modality-mismatch',
      `series modalities ${missing.join(', ')} are not in ${describeTag(Tag.ModalitiesInStudy)}`,
      Tag.ModalitiesInStudy,
    );
  const defaulted = s.defaultedModality ? [s.defaultedModality] : [];
  return [...new Set([...(listed.length ? listed : s.modalities), ...defaulted])].sort();
}

/** The caller's resolved `Patient/<id>`, when it is one. */
function resolvedReference(options: MapOptions, w: WarningList): string | undefined {
  const resolved = options.patientReference;
  if (resolved === undefined || /^Patient\/[A-Za-z0-9\-.]{1,64}$/.test(resolved)) return resolved;
  w.add(
    'bad-patient-reference',
    `the resolved patient reference "${resolved.slice(0, 80)}" is not Patient/<id>; ignored`,
  );
  return undefined;
}

/** ImagingStudy.subject: the patient by identifier, conditional or resolved reference, as the source says. */
function subjectOf(
  reader: DicomReader,
  study: DicomDataset,
  source: SourceConfig,
  options: MapOptions,
  w: WarningList,
): Reference {
  const { mapping } = source;
  // The identifier is read from the dataset below; reading its two tags here too records a malformed
  // value as a warning (value withheld), as for every other attribute.
  reader.recordProblems(Tag.PatientID, Tag.IssuerOfPatientID);
  const patient = resolvePatientIdentifier(study, source);
  if (patient.unmappedIssuer)
    w.add(
      'unmapped-patient-issuer',
      `Issuer of Patient ID "${patient.unmappedIssuer.slice(0, 64)}" is not in the source's issuer table; a system of its own is used (${patient.identifier!.system.slice(0, 160)})`,
      Tag.IssuerOfPatientID,
    );
  const patientName = personNameText(reader.personName(Tag.PatientName), mapping.patient.nameGroup);
  const resolved = resolvedReference(options, w);
  if (mapping.patient.mode === 'resolved' && !resolved)
    w.add(
      'patient-not-resolved',
      'patient mode is "resolved" but no Patient reference was supplied; linked by identifier',
    );
  if (!patient.identifier && !resolved)
    w.add(
      'missing-patient-id',
      `the study has no ${describeTag(Tag.PatientID)}; subject carries the name only`,
      Tag.PatientID,
    );
  return subjectReference(
    patient.identifier,
    patientName ?? (patient.identifier || resolved ? undefined : 'Unknown patient (no Patient ID in DICOM)'),
    mapping.patient.mode,
    resolved,
  );
}

/** Study Instance UID, Accession Number and (when configured) Study ID, and the ServiceRequest the accession names. */
function identifiersOf(
  reader: DicomReader,
  studyUid: string,
  mapping: SourceConfig['mapping'],
): { identifier: Identifier[]; basedOn?: Reference[] } {
  const identifier: Identifier[] = [{ use: 'official', system: SYSTEM.dicomUid, value: `urn:oid:${studyUid}` }];
  const accession = accessionIdentifier(reader, mapping.accessionSystem);
  if (accession) identifier.push(accession);
  const studyId = reader.string(Tag.StudyID);
  if (studyId && mapping.studyIdSystem)
    identifier.push({ use: 'secondary', system: mapping.studyIdSystem, value: studyId });
  const basedOn: Reference[] | undefined =
    mapping.basedOnServiceRequest && accession
      ? [
          {
            type: 'ServiceRequest',
            identifier: { type: accession.type, system: accession.system, value: accession.value },
          },
        ]
      : undefined;
  return { identifier, basedOn };
}

function codes(reader: DicomReader, tag: string): CodeableConcept[] {
  return (reader.codes(tag) ?? []).map(codeableConcept).filter((c): c is CodeableConcept => !!c);
}

/** Who referred and read the study, the procedure, the reasons and the department. */
function clinicalContext(reader: DicomReader, nameGroup: NameGroup) {
  const referrerName = personNameText(reader.personName(Tag.ReferringPhysicianName), nameGroup);
  const interpreters = (reader.personNames(Tag.NameOfPhysiciansReadingStudy) ?? [])
    .map((n) => personNameText(n, nameGroup))
    .filter((n): n is string => !!n);
  const procedureCode = codes(reader, Tag.ProcedureCodeSequence);
  const reasonCode = codes(reader, Tag.ReasonForRequestedProcedureCodeSequence);
  const reasonText = reader.string(Tag.ReasonForRequestedProcedure);
  if (reasonText && !reasonCode.some((c) => c.text === reasonText)) reasonCode.push({ text: reasonText });
  const department = reader.string(Tag.InstitutionalDepartmentName);
  return {
    referrer: referrerName ? { display: referrerName } : undefined,
    interpreter: [...new Set(interpreters)].map((display) => ({ display })),
    procedureCode,
    reasonCode,
    location: department ? { display: department } : undefined,
  };
}

/** Prunes the draft and refuses it when the bridge itself can see it is malformed (the last line of defence). */
function finish(draft: ImagingStudy, studyUid: string, source: SourceConfig, w: WarningList): MapResult {
  const imagingStudy = prune(draft) as ImagingStudy;
  const issues = structuralIssues(imagingStudy);
  if (issues.length) {
    return failure(
      {
        studyUid,
        tag: '',
        code: 'invalid-resource',
        message: `Study ${studyUid}: the mapped resource is invalid: ${issues.slice(0, 3).join('; ')}`,
      },
      w,
    );
  }
  return {
    ok: true,
    imagingStudy,
    endpoint: endpointFor(source),
    contentHash: contentHash(imagingStudy),
    warnings: w.items,
  };
}

function mapStudyOrFail(results: StudyResults, source: SourceConfig, options: MapOptions, w: WarningList): MapResult {
  const read = readStudy(results, w);
  if (!('reader' in read)) return failure(read, w);
  const { study, reader, studyUid } = read;
  const { mapping } = source;
  const studyOffset = studyOffsetOf(reader, source, w);
  const seriesOutcome = mapSeries(
    {
      studyUid,
      studyOffset,
      nameGroup: mapping.patient.nameGroup,
      includeInstances: mapping.includeInstances,
      missingModality: mapping.missingModality,
      warnings: w,
    },
    results.series,
    results.instances,
  );
  if (!seriesOutcome.ok) {
    w.problems(reader.problems);
    return failure(seriesOutcome.error, w);
  }
  const s = seriesOutcome.value;
  const { numberOfSeries, numberOfInstances } = studyCounts(reader, s, w);
  const modalities = modalitiesOf(reader, s, w);
  const subject = subjectOf(reader, study, source, options, w);
  const { identifier, basedOn } = identifiersOf(reader, studyUid, mapping);
  const context = clinicalContext(reader, mapping.patient.nameGroup);
  const started = startedFrom(reader, Tag.StudyDate, Tag.StudyTime, studyOffset, w, 'study');
  const available = (numberOfInstances ?? 0) > 0 || s.instanceCount > 0;

  // Element order follows the FHIR definition, for readable output; undefined members are dropped by prune.
  const draft: ImagingStudy = {
    resourceType: 'ImagingStudy',
    id: imagingStudyId(studyUid),
    meta: { profile: [TWCORE_IMAGING_STUDY_PROFILE] },
    identifier,
    status: available ? 'available' : 'registered',
    modality: modalities.map(modalityCoding),
    subject,
    started,
    basedOn,
    referrer: context.referrer,
    interpreter: context.interpreter,
    endpoint: [endpointReference(source.id)],
    numberOfSeries,
    numberOfInstances,
    procedureCode: context.procedureCode,
    location: context.location,
    reasonCode: context.reasonCode,
    description: reader.string(Tag.StudyDescription),
    series: s.series,
  };
  w.problems(reader.problems);
  return finish(draft, studyUid, source, w);
}

function validCount(n: number | undefined): number | undefined {
  return n !== undefined && Number.isInteger(n) && n >= 0 && n <= 2147483647 ? n : undefined;
}
