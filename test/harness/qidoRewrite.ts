/**
 * A PACS with faults in what it answers, for tests: a proxy in front of a real one (the test Orthanc) that
 * rewrites the rows of QIDO-RS study searches. Studies can be hidden (a storage volume offline: neither the
 * listing nor a look-up by UID finds them) or left out of listings only (a listing glitch: a look-up finds
 * them), and rows can lose their StudyInstanceUID (a PACS answering junk), in listings, look-ups by UID or both;
 * a junk answer to a search with no rows is one row without a UID. Every other request is forwarded as it is.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const STUDY_UID = '0020000D';

type Row = Record<string, { Value?: unknown[] } | undefined>;

export interface QidoRewrite {
  /** The target URL (e.g. Orthanc's /dicom-web base) seen through the proxy. */
  via(targetUrl: string): string;
  /** Studies no study search finds. */
  hidden: Set<string>;
  /** Studies listings leave out but a look-up by StudyInstanceUID finds. */
  unlisted: Set<string>;
  /** Which study searches answer rows without StudyInstanceUID. */
  junk: 'none' | 'listings' | 'lookups' | 'all';
  /** The StudyInstanceUIDs study searches named so far (look-ups by UID, UID lists), in order. */
  lookedUp: string[];
  stop(): Promise<void>;
}

/** A study-level search (not a retrieve of /studies/{uid}), and the StudyInstanceUIDs it names. */
function studySearch(url: string): { uids: string[]; lookup: boolean } | undefined {
  const [path, query = ''] = url.split('?');
  if (!/\/studies\/?$/.test(path!)) return undefined;
  const named = new URLSearchParams(query).get('0020000D') ?? new URLSearchParams(query).get('StudyInstanceUID');
  const uids = named ? named.split(',') : [];
  return { uids, lookup: uids.length > 0 };
}

function rewrite(rows: Row[], p: QidoRewrite, lookup: boolean): Row[] {
  const uidOf = (r: Row) => String(r[STUDY_UID]?.Value?.[0] ?? '');
  const kept = rows.filter((r) => !p.hidden.has(uidOf(r)) && (lookup || !p.unlisted.has(uidOf(r))));
  if (p.junk !== 'all' && p.junk !== (lookup ? 'lookups' : 'listings')) return kept;
  const stripped = kept.map(({ [STUDY_UID]: _uid, ...rest }) => rest);
  return stripped.length ? stripped : [{ '00080061': { Value: ['CT'] } }];
}

export async function startQidoRewrite(target: string): Promise<QidoRewrite> {
  const targetUrl = new URL(target);
  const state: QidoRewrite = {
    via: (t) => t.replace(targetUrl.origin, origin),
    hidden: new Set(),
    unlisted: new Set(),
    junk: 'none',
    lookedUp: [],
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const search = studySearch(req.url ?? '');
    if (search) state.lookedUp.push(...search.uids);
    // Identity encoding: the rows are read and rewritten here.
    const { 'accept-encoding': _enc, ...headers } = req.headers;
    const upstream = http.request(
      { host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers },
      (up) => {
        const chunks: Buffer[] = [];
        up.on('data', (d: Buffer) => chunks.push(d));
        up.on('end', () => {
          let body = Buffer.concat(chunks);
          if (search && up.statusCode === 200 && body.length) {
            body = Buffer.from(
              JSON.stringify(rewrite(JSON.parse(body.toString('utf8')) as Row[], state, search.lookup)),
            );
          }
          const { 'content-length': _len, 'transfer-encoding': _te, ...outHeaders } = up.headers;
          res.writeHead(up.statusCode ?? 502, { ...outHeaders, 'content-length': body.length });
          res.end(body);
        });
      },
    );
    upstream.on('error', () => req.socket.destroy());
    req.pipe(upstream);
  };
  const server = http.createServer(forward);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
