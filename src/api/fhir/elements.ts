/**
 * `_elements` (FHIR R4 search): a match keeps the listed top-level elements, its mandatory ones and its
 * id and meta, and is tagged SUBSETTED so nobody takes it for the whole resource. Included resources are
 * returned whole. The element tables are R4's (test/unit/api/elements.test.ts checks them against the R4
 * definitions the bridge ships). Pure.
 */
import type { Resource } from 'fhir/r4';
import { badRequest } from './outcome';

export const SUBSETTED = {
  system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue',
  code: 'SUBSETTED',
  display: 'subsetted',
};

const DOMAIN_RESOURCE = [
  'id',
  'meta',
  'implicitRules',
  'language',
  'text',
  'contained',
  'extension',
  'modifierExtension',
];

/** R4 top-level elements, and those with a minimum cardinality of 1. */
export const ELEMENTS: Record<'ImagingStudy' | 'Endpoint', { all: string[]; mandatory: string[] }> = {
  ImagingStudy: {
    all: [
      ...DOMAIN_RESOURCE,
      ...['identifier', 'status', 'modality', 'subject', 'encounter', 'started', 'basedOn', 'referrer'],
      ...['interpreter', 'endpoint', 'numberOfSeries', 'numberOfInstances', 'procedureReference'],
      ...['procedureCode', 'location', 'reasonCode', 'reasonReference', 'note', 'description', 'series'],
    ],
    mandatory: ['status', 'subject'],
  },
  Endpoint: {
    all: [
      ...DOMAIN_RESOURCE,
      ...['identifier', 'status', 'connectionType', 'name', 'managingOrganization', 'contact', 'period'],
      ...['payloadType', 'payloadMimeType', 'address', 'header'],
    ],
    mandatory: ['status', 'connectionType', 'payloadType', 'address'],
  },
};

/** `_elements=identifier,started` → the names, each a top-level element of the resource type. */
export function parseElements(name: string, value: string, type: keyof typeof ELEMENTS): string[] {
  const names = value.split(',');
  for (const n of names) {
    if (n === '') throw badRequest(`Parameter "${name}" has an empty value in its comma-separated list.`, name);
    if (!ELEMENTS[type].all.includes(n))
      throw badRequest(`_elements: "${n}" is not an element of ${type} (top-level element names only).`, name);
  }
  return [...new Set(names)];
}

/** The resource with only the listed, mandatory and identifying elements, tagged SUBSETTED. */
export function subsetElements<T extends Resource>(resource: T, elements: string[]): T {
  const table = ELEMENTS[resource.resourceType as keyof typeof ELEMENTS];
  const keep = new Set(['resourceType', 'id', 'meta', ...(table?.mandatory ?? []), ...elements]);
  const out = Object.fromEntries(Object.entries(resource).filter(([k]) => keep.has(k))) as T;
  const tags = (resource.meta?.tag ?? []).filter((t) => !(t.system === SUBSETTED.system && t.code === SUBSETTED.code));
  out.meta = { ...resource.meta, tag: [...tags, SUBSETTED] };
  return out;
}
