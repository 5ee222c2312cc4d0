export { createOpsRouter, type OpsDeps, type OpsStore } from './router';
export {
  checkReadiness,
  storeCheck,
  pacsCheck,
  fhirCheck,
  type Readiness,
  type DependencyStatus,
  type ReadinessCheck,
  type FhirServerTarget,
} from './health';
export { buildStatusModel, renderStatusPage, type StatusModel, type SourceStatus } from './statusPage';
export { adminAuth, ADMIN_SCOPE } from './adminAuth';
