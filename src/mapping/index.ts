/**
 * The mapping layer's public API: QIDO-RS results → TW Core ImagingStudy + Endpoint.
 * Pure, no I/O (except the validator's one-time load of the profiles).
 */
export type { StudyResults, MapResult, MappingWarning, MappingError } from './types';
export { mapStudy, type MapOptions } from './study';
export { imagingStudyId, endpointId, isDicomUid, isFhirId } from './ids';
export { endpointFor, endpointReference } from './endpoint';
export { contentHash, canonicalJson } from './canonical';
export { studyFingerprint } from './fingerprint';
export {
  patientIdentifier,
  conditionalPatientReference,
  patientFacts,
  defaultPatientSystem,
  builtInPatientSystem,
  usesBuiltInPatientSystem,
  type PatientIdentifier,
  type PatientFacts,
} from './patient';
export { humanName } from './names';
export { mergeHoldings, holdingsConflict, type SourceHolding } from './merge';
export {
  validateImagingStudy,
  validateEndpoint,
  validateAny,
  createResourceGuard,
  createPatientGuard,
  preloadValidator,
  setProfilesDir,
  profilesDir,
  validatorLoads,
  ProfilesUnavailableError,
  bundledProfilesRoot,
  isBlocking,
  type ValidationIssue,
  type ResourceGuard,
  type GuardVerdict,
} from './validate';
export { structuralIssues } from './structural';
export { SYSTEM, TWCORE_IMAGING_STUDY_PROFILE } from './terminology/codeSystems';
export { STUDY_UID_CONFLICT, splitStudyConflicts, detailConflict, type StudyConflict } from './conflicts';
