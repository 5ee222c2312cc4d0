/**
 * Errors the FHIR API answers with, each carried as an OperationOutcome. Messages are written for the
 * client: they may echo what the client sent, but never a PACS address, credential or stack.
 */
import type { OperationOutcome, OperationOutcomeIssue } from 'fhir/r4';

export type IssueCode = OperationOutcomeIssue['code'];

export class FhirError extends Error {
  constructor(
    readonly status: number,
    readonly code: IssueCode,
    message: string,
    /** FHIRPath-ish location, e.g. the parameter name. */
    readonly expression?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'FhirError';
  }
}

export const badRequest = (message: string, param?: string) => new FhirError(400, 'invalid', message, param);

export function outcome(
  severity: OperationOutcomeIssue['severity'],
  code: IssueCode,
  text: string,
  expression?: string,
): OperationOutcome {
  const issue: OperationOutcomeIssue = { severity, code, diagnostics: text, details: { text } };
  if (expression) issue.expression = [expression];
  return { resourceType: 'OperationOutcome', issue: [issue] };
}

export function outcomeOf(err: FhirError): OperationOutcome {
  return outcome('error', err.code, err.message, err.expression);
}
