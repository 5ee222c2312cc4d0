/**
 * Configuration of the FHIR-server sink (`sinks.fhir` in the top-level config). Validated with zod so
 * start-up lists every problem at once.
 */
import { z } from 'zod';
import { httpUrl, clientCredentialsSchema } from '../../http';

const url = httpUrl;

export const fhirAuthSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  z.strictObject({ type: z.literal('bearer'), token: z.string().min(1) }),
  clientCredentialsSchema.extend({ type: z.literal('oauth2') }),
]);

/** What to do when a patient cannot be linked as the mode promises. */
const linkFallback = z.enum(['identifier', 'fail']);

export const patientLinkingSchema = z.strictObject({
  /**
   * identifier: Reference.identifier only (no lookup);
   * conditional: `Patient?identifier=system|value`, resolved by the server inside the transaction;
   * lookup: search Patient by identifier (cached) and reference `Patient/<id>`;
   * create: conditional create of a Patient-twcore Patient when identifier, gender and birth date are known.
   */
  mode: z.enum(['identifier', 'conditional', 'lookup', 'create']).default('identifier'),
  /** lookup: no Patient matches. */
  onNone: linkFallback.default('identifier'),
  /** lookup: several Patients match. */
  onMultiple: linkFallback.default('fail'),
  /** create: the DICOM data lacks what Patient-twcore requires (identifier, gender, birth date). */
  fallback: z.enum(['identifier', 'conditional', 'fail']).default('identifier'),
  /** lookup: how long a found Patient id is cached. */
  cacheTtlSeconds: z.number().int().min(0).default(300),
  /** Profile claimed by created Patients. */
  patientProfile: z.string().min(1).default('https://twcore.mohw.gov.tw/ig/twcore/StructureDefinition/Patient-twcore'),
});

export const fhirSinkSchema = z.strictObject({
  /** FHIR R4 base, e.g. https://fhir.example.org/fhir/R4 */
  baseUrl: url,
  auth: fhirAuthSchema.default({ type: 'none' }),
  /** Studies per transaction Bundle. Medplum caps conditional transactions at 8 entries. */
  batchSize: z.number().int().min(1).max(500).default(8),
  /** Upper bound on entries per Bundle (studies + created Patients); a batch is split to respect it. */
  maxEntriesPerTransaction: z.number().int().min(1).max(1000).default(100),
  /** conditional: PUT ImagingStudy?identifier=…; client-id: PUT ImagingStudy/<id> (server must allow client ids). */
  writeMode: z.enum(['conditional', 'client-id']).default('conditional'),
  /** Send If-Match with the version this sink last wrote, so concurrent writers cannot silently overwrite. */
  useIfMatch: z.boolean().default(true),
  patientLinking: patientLinkingSchema.default({}),
  /** Per-source overrides of patientLinking, keyed by source id. */
  patientLinkingBySource: z.record(patientLinkingSchema.partial()).default({}),
  /** Identifier system for Endpoints that carry no identifier (the value is the source id). */
  endpointIdentifierSystem: z.string().min(1).default('urn:pacs-fhir-bridge:endpoint'),
  /** meta.tag put on written resources; removeStudy only touches resources carrying it. */
  ownerTag: z
    .strictObject({ system: z.string().min(1), code: z.string().min(1) })
    .default({ system: 'urn:pacs-fhir-bridge', code: 'synced' }),
  timeoutMs: z.number().int().positive().default(30000),
  /** Retries after a 429, 5xx or network error (per request). */
  retries: z.number().int().min(0).max(20).default(4),
  /** First backoff delay; doubles per attempt, with jitter. Retry-After overrides it. */
  backoffMs: z.number().int().min(0).default(500),
  maxBackoffMs: z.number().int().min(0).default(30000),
  /** The longest Retry-After honoured; longer values are capped. */
  maxRetryAfterMs: z.number().int().min(0).default(120000),
});

export type FhirSinkConfig = z.infer<typeof fhirSinkSchema>;
export type FhirSinkInput = z.input<typeof fhirSinkSchema>;
export type FhirAuth = z.infer<typeof fhirAuthSchema>;
export type PatientLinking = z.infer<typeof patientLinkingSchema>;
