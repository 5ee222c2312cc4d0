/**
 * The PACS's own QIDO floor: the queries a sync cannot avoid, issued with plain HTTP (node:http, keep-alive)
 * at the bridge's concurrency, asking for the same attributes, parsing the JSON and mapping or writing nothing.
 *  - listing: study-level pages of the whole StudyDate range, one after another (the next offset needs the last page);
 *  - per-study details: one series and one instance query per study (how study-by-study tools fetch);
 *  - batched details: series and instances of `batchSize` studies per query (UID-list matching).
 */
import http from 'node:http';
import pLimit from 'p-limit';
import type { SourceConfig } from '../src/config';
import { INSTANCE_INCLUDE_FIELDS, SERIES_INCLUDE_FIELDS, STUDY_INCLUDE_FIELDS } from '../src/dicomweb/includeFields';
import type { BenchCorpus } from './corpus';

export interface FloorPhase {
  ms: number;
  requests: number;
  /** CPU the PACS spent meanwhile, when `pacsCpuMs` is given. */
  pacsCpuMs?: number;
}

export interface FloorOptions {
  dicomWebBase: string;
  from: string;
  to: string;
  concurrency: number;
  pageSize: number;
  /** Studies per UID-list query in the batched floor. */
  batchSize: number;
  /** Sees every answer's body as received (the mapper benchmark keeps them). */
  onBody?: (body: string) => void;
  /** The PACS process's CPU time so far, to report what each phase cost it. */
  pacsCpuMs?: () => number;
}

const STUDY_UID = '0020000D';

/** The floor of a corpus's whole range with the source's concurrency, page size and batch size. */
export function corpusFloor(
  corpus: BenchCorpus,
  source: SourceConfig,
  extra: Pick<FloorOptions, 'onBody' | 'pacsCpuMs'> = {},
): QidoFloor {
  return new QidoFloor({
    dicomWebBase: corpus.orthanc.dicomWebBase,
    from: corpus.from,
    to: corpus.to,
    concurrency: source.concurrency,
    pageSize: source.pageSize,
    batchSize: source.detailBatchSize,
    ...extra,
  });
}

export class QidoFloor {
  private readonly agent: http.Agent;
  private readonly limit: ReturnType<typeof pLimit>;
  requests = 0;

  constructor(private readonly opts: FloorOptions) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
    this.limit = pLimit(opts.concurrency);
  }

  close(): void {
    this.agent.destroy();
  }

  /** Every study of the range, page by page; returns the Study Instance UIDs. */
  async listStudies(): Promise<{ phase: FloorPhase; uids: string[] }> {
    return this.timed(async () => {
      const uids: string[] = [];
      for (let offset = 0; ; offset += this.opts.pageSize) {
        const page = await this.get(
          `/studies?StudyDate=${this.opts.from}-${this.opts.to}&includefield=${STUDY_INCLUDE_FIELDS.join(',')}&limit=${this.opts.pageSize}&offset=${offset}`,
        );
        for (const row of page) uids.push(String((row[STUDY_UID] as { Value: string[] }).Value[0]));
        if (page.length < this.opts.pageSize) return uids;
      }
    }).then(({ phase, result }) => ({ phase, uids: result }));
  }

  perStudyDetails(uids: string[]): Promise<FloorPhase> {
    return this.details(uids.map((u) => [`/studies/${u}/series?`, `/studies/${u}/instances?`]));
  }

  batchedDetails(uids: string[]): Promise<FloorPhase> {
    const paths: string[][] = [];
    for (let i = 0; i < uids.length; i += this.opts.batchSize) {
      const list = uids.slice(i, i + this.opts.batchSize).join(',');
      paths.push([`/series?${STUDY_UID}=${list}&`, `/instances?${STUDY_UID}=${list}&`]);
    }
    return this.details(paths);
  }

  private async details(pairs: string[][]): Promise<FloorPhase> {
    const fields = [
      `includefield=${SERIES_INCLUDE_FIELDS.join(',')}`,
      `includefield=${INSTANCE_INCLUDE_FIELDS.join(',')}`,
    ];
    const { phase } = await this.timed(() =>
      Promise.all(pairs.flatMap((pair) => pair.map((p, level) => this.limit(() => this.get(`${p}${fields[level]}`))))),
    );
    return phase;
  }

  private async timed<T>(fn: () => Promise<T>): Promise<{ phase: FloorPhase; result: T }> {
    const before = this.requests;
    const cpuBefore = this.opts.pacsCpuMs?.();
    const started = process.hrtime.bigint();
    const result = await fn();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const pacsCpuMs = cpuBefore === undefined ? undefined : this.opts.pacsCpuMs!() - cpuBefore;
    return {
      phase: { ms, requests: this.requests - before, ...(pacsCpuMs === undefined ? {} : { pacsCpuMs }) },
      result,
    };
  }

  private get(pathAndQuery: string): Promise<Array<Record<string, unknown>>> {
    this.requests++;
    const url = new URL(this.opts.dicomWebBase + pathAndQuery);
    return new Promise((resolve, reject) => {
      const req = http.get(url, { agent: this.agent, headers: { Accept: 'application/dicom+json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode === 204) return resolve([]);
          if (res.statusCode !== 200)
            return reject(new Error(`floor: ${res.statusCode} for ${pathAndQuery.slice(0, 120)}`));
          const body = Buffer.concat(chunks).toString('utf8');
          this.opts.onBody?.(body);
          resolve(JSON.parse(body) as Array<Record<string, unknown>>);
        });
        res.on('error', reject);
      });
      req.on('error', reject);
    });
  }
}
