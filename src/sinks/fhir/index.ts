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
export { FhirSinkError, type FhirErrorKind } from './errors';
export type { CapabilitySummary } from './capability';
export { patientFactsFromDicom } from './patientFacts';
