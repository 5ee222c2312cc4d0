/**
 * Readable text from a FHIR server's error answer: the OperationOutcome's issues when there is one,
 * else the HTTP status line. This text is what a failed study is recorded (and dead-lettered) with.
 */
import type { OperationOutcome } from 'fhir/r4';

export function isOperationOutcome(body: unknown): body is OperationOutcome {
  return (
    typeof body === 'object' &&
    body !== null &&
    (body as { resourceType?: unknown }).resourceType === 'OperationOutcome'
  );
}

export function operationOutcomeText(outcome: OperationOutcome): string {
  const parts = (outcome.issue ?? []).map((issue) => {
    const text = issue.details?.text ?? issue.diagnostics ?? issue.details?.coding?.[0]?.display ?? issue.code;
    const where = issue.expression?.join(', ') ?? issue.location?.join(', ');
    return `${issue.severity}: ${text}${where ? ` (${where})` : ''}`;
  });
  return parts.join('; ') || 'OperationOutcome without issues';
}

/** Text for an error answer: the OperationOutcome if the body is one, else a short body excerpt. */
export function errorBodyText(body: unknown): string | undefined {
  if (isOperationOutcome(body)) return operationOutcomeText(body);
  if (typeof body === 'string' && body.trim()) return body.trim().slice(0, 300);
  if (body && typeof body === 'object') {
    const oauth = body as { error?: string; error_description?: string };
    if (oauth.error) return `${oauth.error}${oauth.error_description ? `: ${oauth.error_description}` : ''}`;
  }
  return undefined;
}
