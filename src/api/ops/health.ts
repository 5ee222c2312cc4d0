/**
 * Readiness checks, one per dependency: the embedded store (can it take a write?), each PACS (does
 * QIDO-RS answer?) and each FHIR server (do /metadata and an authenticated search answer?). Each check runs under a
 * timeout so a hung dependency makes /readyz answer "not ready" instead of hanging the probe.
 */
import axios from 'axios';
import type { PacsSource } from '../../dicomweb';
import type { StateStore } from '../../state';
import { createFhirAuthorizer, type FhirAuth } from '../../sinks';

export type DependencyKind = 'store' | 'pacs' | 'fhir';

export interface ReadinessCheck {
  name: string;
  kind: DependencyKind;
  /** Resolves with a short detail when the dependency is usable; throws when it is not. */
  run(): Promise<string>;
}

export interface DependencyStatus {
  name: string;
  kind: DependencyKind;
  ok: boolean;
  detail: string;
  /** How long the check took, for operators reading the probe (not a pass criterion). */
  ms: number;
}

export interface Readiness {
  ready: boolean;
  checkedAt: string;
  dependencies: DependencyStatus[];
}

/** A FHIR server the sync writes to: src/sinks/fhir's FhirSink fits as it is. */
export interface FhirServerTarget {
  name: string;
  config: { baseUrl: string; auth?: FhirAuth };
}

/** UIDs only, never credentials: error texts from axios can carry URLs with user:password. */
export function safeError(err: unknown): string {
  const e = err as { response?: { status?: number }; code?: string; message?: string; status?: number };
  if (e?.response?.status) return `HTTP ${e.response.status}`;
  const message = (e?.message ?? String(err)).replace(/\/\/[^/@\s]*@/g, '//');
  return message.length > 300 ? `${message.slice(0, 297)}...` : message;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** The store can take a write now (its backend's rolled-back probe write). */
export function storeCheck(store: Pick<StateStore, 'ping'>, name = 'store'): ReadinessCheck {
  return { name, kind: 'store', run: () => store.ping() };
}

/** A QIDO-RS study search for a UID no PACS holds: proves reachability, credentials and QIDO, returns nothing. */
export const PROBE_STUDY_UID = '2.25.1';

export function pacsCheck(source: Pick<PacsSource, 'id' | 'searchStudies'>): ReadinessCheck {
  return {
    name: source.id,
    kind: 'pacs',
    async run() {
      await source.searchStudies({ StudyInstanceUID: PROBE_STUDY_UID }, { limit: 1, offset: 0 });
      return 'QIDO-RS answered';
    },
  };
}

export function fhirCheck(target: FhirServerTarget, timeoutMs: number): ReadinessCheck {
  const auth = createFhirAuthorizer(target.config.auth ?? { type: 'none' }, timeoutMs);
  const http = axios.create({ timeout: timeoutMs, validateStatus: () => true });
  const base = target.config.baseUrl.replace(/\/+$/, '');
  return {
    name: target.name,
    kind: 'fhir',
    async run() {
      const metadata = await http.get(`${base}/metadata`, { headers: { Accept: 'application/fhir+json' } });
      if (metadata.status >= 400) throw new Error(`metadata: HTTP ${metadata.status}`);
      const version = (metadata.data as { fhirVersion?: string } | undefined)?.fhirVersion;
      // Many servers serve /metadata to anyone: a tiny authenticated search proves the credentials.
      const authorization = await auth.header();
      const search = await http.get(`${base}/Endpoint?_count=1`, {
        headers: { Accept: 'application/fhir+json', ...(authorization ? { Authorization: authorization } : {}) },
      });
      if (search.status === 401 || search.status === 403) {
        auth.refresh();
        throw new Error(`HTTP ${search.status}: credentials rejected`);
      }
      if (search.status >= 400) throw new Error(`search: HTTP ${search.status}`);
      return version ? `FHIR ${version}` : 'FHIR server answered';
    },
  };
}

/** Runs every check at once, each under the timeout. */
export async function checkReadiness(checks: ReadinessCheck[], timeoutMs: number): Promise<Readiness> {
  const dependencies = await Promise.all(
    checks.map(async (c): Promise<DependencyStatus> => {
      const started = process.hrtime.bigint();
      const ms = () => Math.round(Number(process.hrtime.bigint() - started) / 1e6);
      try {
        const detail = await withTimeout(c.run(), timeoutMs, `${c.kind} ${c.name}`);
        return { name: c.name, kind: c.kind, ok: true, detail, ms: ms() };
      } catch (err) {
        return { name: c.name, kind: c.kind, ok: false, detail: safeError(err), ms: ms() };
      }
    }),
  );
  return { ready: dependencies.every((d) => d.ok), checkedAt: new Date().toISOString(), dependencies };
}
