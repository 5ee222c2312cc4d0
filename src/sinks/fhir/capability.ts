/**
 * The start-up check: the server's CapabilityStatement must declare FHIR 4.0.x and support the
 * transaction interaction, or the bridge stops with a clear message instead of failing every batch.
 */
import type { CapabilityStatement } from 'fhir/r4';

export interface CapabilitySummary {
  fhirVersion: string;
  software?: string;
  transaction: boolean;
  conditionalUpdate?: boolean;
  updateCreate?: boolean;
}

/** Problems that make the server unusable for this sink (empty when fine). */
export function capabilityProblems(
  cs: unknown,
  writeMode: 'conditional' | 'client-id',
): { summary?: CapabilitySummary; problems: string[] } {
  if (!cs || typeof cs !== 'object' || (cs as { resourceType?: unknown }).resourceType !== 'CapabilityStatement') {
    return { problems: ['GET [base]/metadata did not return a CapabilityStatement'] };
  }
  const statement = cs as CapabilityStatement;
  const problems: string[] = [];
  const fhirVersion = statement.fhirVersion ?? '(none)';
  if (!/^4\.0(\.\d+)?$/.test(fhirVersion))
    problems.push(`server speaks FHIR ${fhirVersion}, this bridge needs FHIR R4 (4.0.x)`);
  const server = statement.rest?.find((r) => r.mode === 'server') ?? statement.rest?.[0];
  const transaction = Boolean(server?.interaction?.some((i) => i.code === 'transaction'));
  if (!transaction)
    problems.push('server does not declare the "transaction" interaction (CapabilityStatement.rest.interaction)');
  const imagingStudy = server?.resource?.find((r) => r.type === 'ImagingStudy');
  const summary: CapabilitySummary = {
    fhirVersion,
    software: statement.software
      ? `${statement.software.name}${statement.software.version ? ` ${statement.software.version}` : ''}`
      : undefined,
    transaction,
    conditionalUpdate: imagingStudy?.conditionalUpdate,
    updateCreate: imagingStudy?.updateCreate,
  };
  // Only an explicit "false" is a problem: many servers leave these flags out.
  if (writeMode === 'conditional' && imagingStudy?.conditionalUpdate === false) {
    problems.push('server declares no conditional update for ImagingStudy; use writeMode "client-id"');
  }
  if (writeMode === 'client-id' && imagingStudy?.updateCreate === false) {
    problems.push(
      'server does not allow client-assigned ids for ImagingStudy (updateCreate false); use writeMode "conditional"',
    );
  }
  return { summary, problems };
}
