/**
 * An in-memory PACS with the source layer's contract, and a minimal mapper, for unit tests of the
 * run loop's policy (what is fetched, written, retried). Integration tests use Orthanc and src/mapping.
 */
import { createHash } from 'node:crypto';
import type { SourceConfig } from '../../../src/config';
import { sourceSchema } from '../../../src/config';
import type { DicomDataset } from '../../../src/dicomweb/dicomJson';
import { PacsError, type PacsSource, type QidoMatch, type StudyDetails, type StudyWindow } from '../../../src/dicomweb/types';
import type { MapResult, StudyResults } from '../../../src/mapping/types';
import type { StudyMapper } from '../../../src/sync';

export interface FakeStudy {
  uid: string;
  date?: string;
  modality: string;
  instances: number;
}

const str = (v: string) => ({ vr: 'UI', Value: [v] });

export function studyDataset(s: FakeStudy): DicomDataset {
  return {
    '0020000D': str(s.uid),
    ...(s.date ? { '00080020': { vr: 'DA', Value: [s.date] } } : {}),
    '00080061': { vr: 'CS', Value: [s.modality] },
    '00201208': { vr: 'IS', Value: [s.instances] },
  };
}

export class FakePacs implements PacsSource {
  readonly id = 'fake';
  readonly studies = new Map<string, FakeStudy>();
  readonly stats = { requests: { studies: 0, series: 0, instances: 0, metadata: 0, token: 0 }, retries: 0, splits: 0 };
  detailCalls: string[][] = [];
  /** Study UIDs whose detail query fails with HTTP 500. */
  failing = new Set<string>();
  /** When set, every request fails as if the PACS were unreachable. */
  down = false;
  /** Throws "down" after this many more detail calls. */
  downAfterDetailCalls?: number;

  add(...studies: FakeStudy[]): void {
    for (const s of studies) this.studies.set(s.uid, s);
  }

  private check(): void {
    if (this.down) throw new PacsError('connect ECONNREFUSED', 0, 'network', true);
  }

  async findStudies(window: StudyWindow, _match?: QidoMatch): Promise<DicomDataset[]> {
    this.check();
    this.stats.requests.studies++;
    return [...this.studies.values()].filter((s) => s.date && s.date >= window.from && s.date <= window.to).map(studyDataset);
  }
  async findUndatedStudies(): Promise<DicomDataset[]> {
    this.check();
    this.stats.requests.studies++;
    return [...this.studies.values()].filter((s) => !s.date).map(studyDataset);
  }
  async searchStudies(match: QidoMatch): Promise<DicomDataset[]> {
    this.check();
    this.stats.requests.studies++;
    const s = this.studies.get(match.StudyInstanceUID);
    return s ? [studyDataset(s)] : [];
  }
  /** Series `<study uid>.1`, as studyDetails reports them. */
  async searchSeries(match: QidoMatch): Promise<DicomDataset[]> {
    this.check();
    this.stats.requests.series++;
    const uid = match.SeriesInstanceUID?.replace(/\.1$/, '');
    return uid && this.studies.has(uid) ? [{ '0020000D': str(uid), '0020000E': str(`${uid}.1`) }] : [];
  }
  async studyDetails(uids: string[]): Promise<Map<string, StudyDetails>> {
    if (this.downAfterDetailCalls !== undefined && this.downAfterDetailCalls-- <= 0) this.down = true;
    this.check();
    this.detailCalls.push(uids);
    this.stats.requests.series++;
    const bad = uids.find((u) => this.failing.has(u));
    if (bad) throw new PacsError('HTTP 500 from PACS', 500, 'http', true);
    const out = new Map<string, StudyDetails>();
    for (const uid of uids) {
      const s = this.studies.get(uid);
      if (s) out.set(uid, { series: [{ '0020000E': str(`${uid}.1`), '00080060': { vr: 'CS', Value: [s.modality] } }], instances: [] });
    }
    return out;
  }
  async studyMetadata(): Promise<DicomDataset[]> {
    return [];
  }
  async supportsUidListMatching(): Promise<boolean> {
    return true;
  }
}

export const fakeMapper: StudyMapper & { broken: Set<string> } = {
  broken: new Set<string>(),
  studyFingerprint(study: DicomDataset): string {
    return createHash('sha1').update(JSON.stringify(study)).digest('hex');
  },
  mapStudy(results: StudyResults, source: SourceConfig): MapResult {
    const uid = String(results.study['0020000D']?.Value?.[0]);
    if (fakeMapper.broken.has(uid)) return { ok: false, error: { studyUid: uid, tag: '00080060', code: 'series-missing-modality', message: 'no modality' }, warnings: [] };
    const n = Number(results.study['00201208']?.Value?.[0]);
    const id = createHash('sha1').update(uid).digest('hex').slice(0, 32);
    const imagingStudy = {
      resourceType: 'ImagingStudy' as const,
      id,
      status: 'available' as const,
      subject: { reference: 'Patient/x' },
      identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${uid}` }],
      numberOfInstances: n,
      numberOfSeries: results.series.length,
    };
    const endpoint = { resourceType: 'Endpoint' as const, id: `ep-${source.id}`, status: 'active' as const, connectionType: { code: 'dicom-wado-rs' }, payloadType: [{ text: 'DICOM' }], address: source.qidoBase };
    return { ok: true, imagingStudy, endpoint, contentHash: createHash('sha1').update(JSON.stringify(imagingStudy)).digest('hex'), warnings: [] };
  },
};

export function fakeSourceConfig(id = 'fake'): SourceConfig {
  return sourceSchema.parse({ id, qidoBase: 'http://pacs.invalid/dicom-web', defaultTimezone: '+0800' });
}
