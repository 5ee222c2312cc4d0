/**
 * Where synced resources go: the Sink interface the sync writes through, the embedded sink (the state
 * store) and the FHIR-server sink. Other folders import sinks from here only.
 */
export type { Sink, StudyWrite, PatientLinkNote, WriteOutcome, PatientFacts } from './sink';
export { createEmbeddedSink, EMBEDDED_SINK_NAME } from './embeddedSink';
export * from './fhir';
