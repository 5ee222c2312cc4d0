/**
 * The CapabilityStatement, built from the same parameter tables the parser uses, so it lists exactly
 * what the server accepts: read and search-type for ImagingStudy and Endpoint, nothing else.
 */
import type {
  CapabilityStatement,
  CapabilityStatementRestResourceSearchParam,
  CapabilityStatementRestSecurity,
  Extension,
} from 'fhir/r4';
import { TWCORE_IMAGING_STUDY_PROFILE } from '../../mapping';
import type { ApiConfig } from '../config';
import { endpointParams, imagingStudyParams, INCLUDE_VALUES, type ParamDef } from './params';

const toSearchParam = (p: ParamDef): CapabilityStatementRestResourceSearchParam => {
  const out: CapabilityStatementRestResourceSearchParam = { name: p.name, type: p.type };
  if (p.definition) out.definition = p.definition;
  out.documentation = p.documentation;
  return out;
};

function securityText(cfg: ApiConfig): string {
  switch (cfg.auth.type) {
    case 'none':
      return 'No access control (configured off).';
    case 'apiKey':
      return 'API key in the X-API-Key header; scopes per key (SMART style, e.g. system/ImagingStudy.read).';
    case 'jwt':
      return "OAuth2 bearer JWT (issuer and audience checked, keys from the issuer's JWKS); SMART scopes system/ or user/ ImagingStudy.read and Endpoint.read (or .rs). Patient context is refused: patient/ scopes, and user/ scopes in a token with a patient claim, get 403.";
  }
}

/** SMART on FHIR discovery: the service coding and, where configured, the oauth-uris extension. */
function smartSecurity(auth: Extract<ApiConfig['auth'], { type: 'jwt' }>): CapabilityStatementRestSecurity {
  const uris: Extension[] = [
    ...(auth.tokenUrl ? [{ url: 'token', valueUri: auth.tokenUrl }] : []),
    ...(auth.authorizeUrl ? [{ url: 'authorize', valueUri: auth.authorizeUrl }] : []),
  ];
  return {
    ...(uris.length ? { extension: [{ url: SMART_OAUTH_URIS, extension: uris }] } : {}),
    service: [
      {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }],
        text: 'OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)',
      },
    ],
  };
}

const SMART_OAUTH_URIS = 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris';

export function capabilityStatement(cfg: ApiConfig, base: string, version: string): CapabilityStatement {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString().slice(0, 10),
    publisher: 'pacs-fhir-bridge',
    kind: 'instance',
    software: { name: 'pacs-fhir-bridge', version },
    implementation: {
      description: `ImagingStudy and Endpoint from DICOMweb PACS (${cfg.mode === 'live' ? 'answered live through QIDO-RS' : 'answered from the embedded store'})`,
      url: base,
    },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [
      {
        mode: 'server',
        security: {
          cors: cfg.cors.enabled,
          ...(cfg.auth.type === 'jwt' ? smartSecurity(cfg.auth) : {}),
          description: securityText(cfg),
        },
        resource: [
          {
            type: 'ImagingStudy',
            profile: 'http://hl7.org/fhir/StructureDefinition/ImagingStudy',
            supportedProfile: [TWCORE_IMAGING_STUDY_PROFILE],
            interaction: [{ code: 'read' }, { code: 'search-type' }],
            versioning: cfg.mode === 'store' ? 'versioned' : 'no-version',
            readHistory: false,
            updateCreate: false,
            conditionalCreate: false,
            conditionalRead: cfg.mode === 'store' ? 'not-match' : 'not-supported',
            conditionalUpdate: false,
            conditionalDelete: 'not-supported',
            searchInclude: INCLUDE_VALUES,
            // This server's mode only: _lastUpdated is a store-mode parameter (its documentation says why).
            searchParam: imagingStudyParams(cfg.mode).map(toSearchParam),
          },
          {
            type: 'Endpoint',
            profile: 'http://hl7.org/fhir/StructureDefinition/Endpoint',
            interaction: [{ code: 'read' }, { code: 'search-type' }],
            versioning: 'no-version',
            searchParam: endpointParams().map(toSearchParam),
          },
        ],
      },
    ],
  };
}
