/**
 * The bridge's configuration, validated with zod so that start-up can list every problem at once.
 * Each section belongs to one concern (sources → dicomweb, mapping, sync, sinks, api).
 */
import { z } from 'zod';
import { apiSchema } from '../api/config';
import { httpUrl, clientCredentialsSchema } from '../http';
import { isKnownZone } from '../time';
import { fhirSinkSchema } from '../sinks/fhir/config';
import { storeSchema } from '../state/config';
import { syncSchema } from '../sync/config';

const url = httpUrl;

export const pacsAuthSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  z.strictObject({ type: z.literal('basic'), username: z.string().min(1), password: z.string() }),
  z.strictObject({ type: z.literal('bearer'), token: z.string().min(1) }),
  clientCredentialsSchema.extend({ type: z.literal('oauth2') }),
]);

export const tlsSchema = z
  .strictObject({
    /** PEM file of CA certificates to trust in addition to Node's defaults. */
    caFile: z.string().optional(),
    certFile: z.string().optional(),
    keyFile: z.string().optional(),
    rejectUnauthorized: z.boolean().default(true),
  })
  .default({});

/** IANA zone name or a fixed "+HHMM"/"-HHMM" offset. */
const timezone = z
  .string()
  .refine(isKnownZone, (tz) => ({ message: `"${tz}" is neither an IANA time zone nor a +HHMM offset` }));

export const patientLinkSchema = z
  .strictObject({
    /** identifier: logical reference; conditional: Patient?identifier=…; resolved: Patient/<id> given by the caller. */
    mode: z.enum(['identifier', 'conditional', 'resolved']).default('identifier'),
    /**
     * Identifier system for Patient ID when there is no Issuer of Patient ID. Unset: the source's own
     * `urn:pacs-fhir-bridge:<source id>:patient-id`, so two PACS never share a patient unless they say so.
     */
    defaultSystem: z.string().min(1).optional(),
    /** Issuer of Patient ID (0010,0021) → identifier system. */
    issuerSystems: z.record(z.string().min(1)).default({}),
    /** Which PN component group becomes subject.display. */
    nameGroup: z.enum(['alphabetic', 'ideographic']).default('alphabetic'),
  })
  .default({});

export const mappingSchema = z
  .strictObject({
    /** Identifier system for Accession Number when the PACS gives no issuer. */
    accessionSystem: z.string().min(1).optional(),
    /** Identifier system for Study ID (0020,0010); Study ID is emitted only when set. */
    studyIdSystem: z.string().min(1).optional(),
    patient: patientLinkSchema,
    /** Add basedOn: ServiceRequest by accession identifier. */
    basedOnServiceRequest: z.boolean().default(false),
    /** Include instance lists in ImagingStudy.series.instance. */
    includeInstances: z.boolean().default(true),
    /**
     * A series without Modality (0008,0060), which FHIR requires: 'error' fails the study (series-missing-modality);
     * 'OT' maps it as DICOM "Other" with a series-modality-defaulted warning.
     */
    missingModality: z.enum(['error', 'OT']).default('error'),
  })
  .default({});

/**
 * A source's change feed (src/dicomweb/changeFeed.ts): discovery within seconds of a study arriving,
 * whatever its StudyDate. `auto` uses Orthanc's /changes when the source's REST root answers as Orthanc.
 */
export const changeFeedSchema = z
  .object({
    type: z.enum(['auto', 'orthanc', 'off']).default('auto'),
    /** Orthanc's REST root (where /changes and /system are); default: qidoBase without its last path segment. */
    restBase: url.optional(),
    /** Seconds between feed polls when nothing is happening (each costs one request). */
    intervalSeconds: z.number().min(0.1).max(3600).default(2),
    /**
     * Seconds between feed polls while studies are arriving (events in the last 10 s, or studies pending
     * until Orthanc reports them stable): a stable study is then seen sooner, at no cost when idle.
     */
    busyIntervalSeconds: z.number().min(0.1).max(3600).default(0.5),
    /** Events asked for per feed request. */
    pageSize: z.number().int().min(1).max(10000).default(1000),
    /**
     * A study seen changing but never reported ready (Orthanc restarted before StableStudy fired) is
     * synced once nothing has happened to it for this long.
     */
    settleSeconds: z.number().min(0).max(86400).default(300),
  })
  .strict()
  .default({});

export const sourceSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-.]{0,63}$/, 'use letters, digits, "-" and "." (a FHIR id)'),
  /** QIDO-RS / WADO-RS base URL the bridge calls, e.g. http://pacs:8042/dicom-web */
  qidoBase: url,
  /** WADO-RS base that FHIR clients will use (Endpoint.address); defaults to qidoBase. */
  publicWadoBase: url.optional(),
  auth: pacsAuthSchema.default({ type: 'none' }),
  tls: tlsSchema,
  timeoutMs: z.number().int().positive().default(30000),
  concurrency: z.number().int().min(1).max(64).default(4),
  /** QIDO limit per page. */
  pageSize: z.number().int().min(1).max(10000).default(100),
  /** The most results the server returns for one query, when known (Orthanc's LimitFindResults, Azure's 200). */
  serverLimit: z.number().int().positive().optional(),
  retries: z.number().int().min(0).max(20).default(4),
  /** Applied to studies without Timezone Offset From UTC (0008,0201). */
  defaultTimezone: timezone.default('Asia/Taipei'),
  /**
   * The PACS percent-decodes QIDO query values (RFC 3986, as PS3.18 says). Then values with spaces, "^",
   * "%" or non-ASCII characters are sent exactly; otherwise (Orthanc 1.10) such names are widened with
   * wildcards and narrowed locally, and such Patient IDs or accession numbers are refused.
   */
  percentDecodesQueryValues: z.boolean().default(false),
  /** UID-list matching in batched detail queries: probe the PACS, or force on/off. */
  uidListMatching: z.enum(['auto', 'on', 'off']).default('auto'),
  /** Studies per batched series/instance query (fewer when their UIDs would make the URL too long). */
  detailBatchSize: z.number().int().min(1).max(500).default(100),
  /** QIDO limit per page of series and instance queries, which return several rows per study. */
  detailPageSize: z.number().int().min(1).max(10000).default(1000),
  mapping: mappingSchema,
  /**
   * WADO-RS metadata enrichment: for each new or changed study, one instance's metadata fills the mapped
   * attributes QIDO-RS left out (sequences, physicians). Off by default: it costs requests per study.
   */
  enrichment: z
    .object({ wadoMetadata: z.boolean().default(false) })
    .strict()
    .default({}),
  /**
   * Media types the PACS renders instances to (WADO-RS rendered resources, e.g. "image/jpeg"); the Endpoint
   * lists them in payloadMimeType beside application/dicom. Empty (default): DICOM only.
   */
  renderedMimeTypes: z
    .array(z.string().regex(/^[a-z]+\/[A-Za-z0-9.+-]+$/, 'a media type such as "image/jpeg"'))
    .default([]),
  changeFeed: changeFeedSchema,
});

export const sinksSchema = z
  .object({
    /** The embedded store as a sink: lets a site with no FHIR server sync and look studies up. */
    embedded: z
      .object({ enabled: z.boolean().default(true) })
      .strict()
      .default({}),
    /** A FHIR R4 server to write to; absent means none. */
    fhir: fhirSinkSchema.optional(),
    /**
     * The profile guard, on by default: refuse to write any resource that fails base R4 or TW Core
     * ImagingStudy-twcore validation; the study is recorded as failed instead. Profiles that cannot be
     * loaded stop start-up (exit 78).
     */
    validation: z
      .object({
        enabled: z.boolean().default(true),
        /**
         * Folder of the TW Core 0.3.2 StructureDefinitions;
         * default $TWCORE_PROFILES_DIR, else the shipped profiles/twcore-0.3.2.
         */
        profilesDir: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
  })
  .strict()
  .default({});

export const loggingSchema = z
  .object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Readable lines instead of JSON; defaults to on when stdout is a terminal outside production. */
    pretty: z.boolean().optional(),
  })
  .strict()
  .default({});

/** Strict at every depth (z.strictObject): a misspelt key is an error, not a silently ignored setting. */
export const configSchema = z
  .object({
    sources: z.array(sourceSchema).min(1, 'configure at least one PACS source'),
    store: storeSchema,
    sync: syncSchema,
    sinks: sinksSchema,
    api: apiSchema.default({}),
    logging: loggingSchema,
  })
  .strict();

export type PacsAuth = z.infer<typeof pacsAuthSchema>;
export type SourceConfig = z.infer<typeof sourceSchema>;
export type ChangeFeedConfig = z.infer<typeof changeFeedSchema>;
export type SourceInput = z.input<typeof sourceSchema>;
export type BridgeConfig = z.infer<typeof configSchema>;
