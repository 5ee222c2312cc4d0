/** The FHIR-server sink: see fhirSink.ts. */
export { FhirSink, createFhirSink, FHIR_SINK_NAME, type FhirSinkStats, type FhirSinkDeps } from './fhirSink';
export {
  fhirSinkSchema,
  fhirAuthSchema,
  patientLinkingSchema,
  type FhirSinkConfig,
  type FhirSinkInput,
  type FhirAuth,
  type PatientLinking,
} from './config';
export { FhirSinkError, isOutage as isFhirOutage, type FhirErrorKind } from './errors';
export { createFhirAuthorizer } from './auth';
export type { CapabilitySummary } from './capability';
