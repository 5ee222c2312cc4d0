/**
 * The `api` configuration section: the on-demand FHIR API over the PACS. Defaults are the safe ones:
 * loopback only, authentication required (no keys configured = nobody gets in), unrestricted searches
 * refused, CORS off. The integrator wires `apiSchema` into the top-level config schema.
 */
import { z } from 'zod';
import { httpUrl } from '../http';

const sha256Hex = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, 'the SHA-256 of the key, as 64 hex digits')
  .transform((h) => h.toLowerCase());

/** SMART scopes granted to an API key client; by default read access to what the API serves. */
const DEFAULT_KEY_SCOPES = ['system/ImagingStudy.read', 'system/Endpoint.read'];

export const apiAuthSchema = z.discriminatedUnion('type', [
  /** Access control off: only when a site says so explicitly. */
  z.strictObject({ type: z.literal('none') }),
  z.strictObject({
    type: z.literal('apiKey'),
    /** Keys are stored hashed: `printf %s "$KEY" | sha256sum`. Sent by clients in the X-API-Key header. */
    keys: z
      .array(
        z.strictObject({
          client: z.string().min(1).max(64),
          sha256: sha256Hex,
          scopes: z.array(z.string().min(1)).default(DEFAULT_KEY_SCOPES),
        }),
      )
      .default([]),
  }),
  z.strictObject({
    type: z.literal('jwt'),
    /** Where the authorization server publishes its signing keys. */
    jwksUrl: httpUrl,
    issuer: z.string().min(1),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /** Accepted signature algorithms (none, HS* are never accepted with a JWKS). */
    algorithms: z
      .array(z.string().regex(/^(RS|PS|ES)\d{3}$|^EdDSA$/))
      .default(['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA']),
    /** Clock skew tolerated on exp/nbf, in seconds. */
    clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
    /** The authorization server's token endpoint, advertised in the CapabilityStatement (SMART oauth-uris). */
    tokenUrl: httpUrl.optional(),
    /** Its authorization endpoint, when it has one (SMART oauth-uris). */
    authorizeUrl: httpUrl.optional(),
  }),
]);

export const apiSchema = z
  .strictObject({
    port: z.number().int().min(0).max(65535).default(8080),
    /** Loopback unless a site opens it deliberately. */
    host: z.string().min(1).default('127.0.0.1'),
    /** Public base URL of /fhir for Bundle links (behind a proxy); else taken from the request. */
    baseUrl: httpUrl.optional(),
    /** Where answers come from: the PACS (live) or the embedded store filled by sync. */
    mode: z.enum(['live', 'store']).default('live'),
    /** In store mode: ask the PACS for studies the store does not hold (yet). */
    storeFallback: z.boolean().default(true),
    /** Source ids searched, in this order; all configured sources when absent. */
    searchSources: z.array(z.string().min(1)).min(1).optional(),
    cache: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** Lifetime of a cached search or read response. */
        ttlSeconds: z.number().int().min(1).max(86400).default(60),
        /** Lifetime of one study's mapped resource (shared by searches and reads). */
        studyTtlSeconds: z.number().int().min(1).max(86400).default(300),
        maxKeys: z.number().int().min(10).max(1_000_000).default(10_000),
        /** Concurrent identical requests share one PACS query (independent of caching). */
        dedupe: z.boolean().default(true),
      })
      .default({}),
    /** _count when the client gives none, and the most a page may hold. */
    defaultCount: z.number().int().min(1).max(1000).default(20),
    maxCount: z.number().int().min(1).max(1000).default(50),
    /** Instance lists in search results (reads always carry them); costs one more batched query per page. */
    searchInstances: z.boolean().default(false),
    /** Accept searches with no restricting parameter (they list the whole PACS page by page). */
    allowUnrestrictedSearch: z.boolean().default(false),
    /** Studies a `_summary=count` may scan before it is refused as too costly. */
    maxCountScan: z.number().int().min(1).max(1_000_000).default(10_000),
    /** Longest accepted parameter value. */
    maxValueLength: z.number().int().min(16).max(1024).default(128),
    /** How a Patient resource id relates to the DICOM Patient ID: id = prefix + PatientID + suffix. */
    patientIdRule: z
      .strictObject({
        prefix: z
          .string()
          .regex(/^[A-Za-z0-9.-]*$/)
          .default(''),
        suffix: z
          .string()
          .regex(/^[A-Za-z0-9.-]*$/)
          .default(''),
        /** When set, the study's patient identifier must also have this system. */
        system: z.string().min(1).optional(),
      })
      .optional(),
    auth: apiAuthSchema.default({ type: 'apiKey', keys: [] }),
    rateLimit: z
      .strictObject({
        enabled: z.boolean().default(true),
        windowSeconds: z.number().int().min(1).max(86400).default(60),
        /** Requests per client (or per address when access control is off) per window. */
        max: z.number().int().min(1).default(300),
        /** Failed authentications per client address per window; beyond it 429, before any credential check. */
        maxAuthFailures: z.number().int().min(1).default(20),
      })
      .default({}),
    cors: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** Allowed origins; "*" allows any (no credentials are involved: keys and tokens are headers). */
        origins: z.array(z.string().min(1)).default([]),
      })
      .default({}),
    audit: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** File the audit lines go to (apart from the application log); "stdout"/"stderr" allowed. */
        destination: z.string().min(1).default('./data/audit.log'),
      })
      .default({}),
    /** Express "trust proxy" (hop count or list) when the API sits behind a reverse proxy. */
    trustProxy: z.union([z.boolean(), z.number().int().min(0), z.string()]).default(false),
  })
  .refine((c) => c.defaultCount <= c.maxCount, {
    message: 'defaultCount must not exceed maxCount',
    path: ['defaultCount'],
  });

export type ApiConfig = z.infer<typeof apiSchema>;
export type ApiConfigInput = z.input<typeof apiSchema>;
export type ApiAuthConfig = z.infer<typeof apiAuthSchema>;

export function parseApiConfig(raw: unknown = {}): ApiConfig {
  return apiSchema.parse(raw);
}
