/** The source's Endpoint: where FHIR clients fetch the study's images (WADO-RS). */
import type { Endpoint, Reference } from 'fhir/r4';
import type { SourceConfig } from '../config';
import { endpointId } from './ids';
import { SYSTEM } from './terminology/codeSystems';

export function endpointFor(
  source: Pick<SourceConfig, 'id' | 'qidoBase' | 'publicWadoBase'> & Partial<Pick<SourceConfig, 'renderedMimeTypes'>>,
): Endpoint {
  return {
    resourceType: 'Endpoint',
    id: endpointId(source.id),
    status: 'active',
    connectionType: { system: SYSTEM.endpointConnectionType, code: 'dicom-wado-rs', display: 'DICOM WADO-RS' },
    name: `PACS ${source.id} DICOM WADO-RS endpoint`,
    payloadType: [{ text: 'DICOM WADO-RS' }],
    // Rendered media types (WADO-RS /rendered, PS3.18 §9.5) where the source says its PACS serves them.
    payloadMimeType: [...new Set(['application/dicom', ...(source.renderedMimeTypes ?? [])])],
    // The public base, never the PACS's RetrieveURL (0008,1190): Debian's Orthanc reports it without its port.
    address: (source.publicWadoBase ?? source.qidoBase).replace(/\/+$/, ''),
  };
}

export function endpointReference(sourceId: string): Reference {
  return { reference: `Endpoint/${endpointId(sourceId)}` };
}
