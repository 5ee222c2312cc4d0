/**
 * OAuth2 client credentials (RFC 6749 §4.4), behind the `oauth2` Authorizer (auth.ts) of the PACS
 * source layer and the FHIR-server sink: the token request (client_secret_basic or client_secret_post),
 * a cache renewed shortly before expiry, and one request in flight however many callers wait.
 * Callers turn a TokenRequestError into their own error type (auth.ts says which are final).
 */
import type { Agent } from 'node:https';
import axios from 'axios';
import { z } from 'zod';
import { DeadlineError, withDeadline } from './timeout';
import { httpUrl } from './url';

export const clientCredentialsSchema = z.strictObject({
  tokenUrl: httpUrl,
  clientId: z.string().min(1),
  clientSecret: z.string().min(1),
  scope: z.string().optional(),
  /** How the client authenticates at the token endpoint (RFC 6749 §2.3.1). */
  clientAuth: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_basic'),
});

export type ClientCredentials = z.infer<typeof clientCredentialsSchema>;

export class TokenRequestError extends Error {
  constructor(
    message: string,
    /** HTTP status of the token endpoint's answer; 0 when it could not be reached. */
    readonly status: number,
    readonly kind: 'network' | 'timeout' | 'refused' | 'http' | 'bad-response',
    /** The endpoint's `error` code or error text, short, never a credential. */
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'TokenRequestError';
  }
}

export interface TokenCache {
  /** "Bearer <token>", from the cache or a new token request. */
  authorization(): Promise<string>;
  /** Forget the cached token (after a 401) so the next call fetches a fresh one. */
  invalidate(): void;
  readonly tokenRequests: number;
}

export interface TokenCacheOptions {
  /** The whole token request, under the one timeout rule (timeout.ts). */
  timeoutMs: number;
  httpsAgent?: Agent;
  now?: () => number;
  /** Called for each request to the token endpoint (request counters). */
  onTokenRequest?: () => void;
}

/** Renew this long before expiry at most, or a tenth of the lifetime for short-lived tokens. */
const EARLY_RENEWAL_MS = 60_000;

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding. */
function basicCredentials(clientId: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64');
}

function errorDetail(data: unknown): string | undefined {
  if (typeof data === 'object' && data !== null) {
    const d = data as { error?: unknown; error_description?: unknown };
    if (d.error) return [d.error, d.error_description].filter(Boolean).map(String).join(': ').slice(0, 200);
  }
  return typeof data === 'string' && data.trim() ? data.trim().slice(0, 200) : undefined;
}

export function clientCredentialsToken(creds: ClientCredentials, opts: TokenCacheOptions): TokenCache {
  const now = opts.now ?? Date.now;
  let cached: { value: string; renewAt: number } | undefined;
  let inFlight: Promise<string> | undefined;
  let tokenRequests = 0;

  const fetchToken = async (): Promise<string> => {
    tokenRequests++;
    opts.onTokenRequest?.();
    const { value, lifetimeMs } = await requestToken(creds, opts);
    cached = { value, renewAt: now() + lifetimeMs - Math.min(EARLY_RENEWAL_MS, lifetimeMs / 10) };
    return value;
  };

  return {
    async authorization() {
      if (cached && now() < cached.renewAt) return cached.value;
      inFlight ??= fetchToken().finally(() => (inFlight = undefined));
      return inFlight;
    },
    invalidate() {
      cached = undefined;
    },
    get tokenRequests() {
      return tokenRequests;
    },
  };
}

/** The token request's form and headers, with the client authenticated as configured (Basic or in the form). */
function tokenRequest(creds: ClientCredentials): { form: URLSearchParams; headers: Record<string, string> } {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (creds.scope) form.set('scope', creds.scope);
  const headers: Record<string, string> = {
    'Content-Type': 'application/x-www-form-urlencoded',
    Accept: 'application/json',
  };
  if (creds.clientAuth === 'client_secret_post') {
    form.set('client_id', creds.clientId);
    form.set('client_secret', creds.clientSecret);
  } else {
    headers.Authorization = `Basic ${basicCredentials(creds.clientId, creds.clientSecret)}`;
  }
  return { form, headers };
}

/** One request to the token endpoint: the Authorization value and its lifetime, or a TokenRequestError. */
async function requestToken(
  creds: ClientCredentials,
  opts: TokenCacheOptions,
): Promise<{ value: string; lifetimeMs: number }> {
  const { form, headers } = tokenRequest(creds);
  let res;
  try {
    res = await withDeadline(opts.timeoutMs, (signal) =>
      axios.post(creds.tokenUrl, form.toString(), {
        headers,
        signal,
        httpsAgent: opts.httpsAgent,
        validateStatus: () => true,
      }),
    );
  } catch (e) {
    if (e instanceof DeadlineError) throw new TokenRequestError(`unreachable (${e.message})`, 0, 'timeout');
    const code = (e as { code?: string }).code ?? (e as Error).message;
    throw new TokenRequestError(`unreachable (${code})`, 0, code === 'ECONNABORTED' ? 'timeout' : 'network');
  }
  return tokenFromAnswer(res.status, res.data);
}

/** Reads the token endpoint's answer: refused (400/401/403), another error status, or a token and its lifetime. */
function tokenFromAnswer(status: number, data: unknown): { value: string; lifetimeMs: number } {
  const detail = errorDetail(data);
  const suffix = detail ? `: ${detail}` : '';
  if (status === 400 || status === 401 || status === 403)
    throw new TokenRequestError(`refused the client credentials (${status}${suffix})`, status, 'refused', detail);
  if (status >= 300) throw new TokenRequestError(`answered HTTP ${status}${suffix}`, status, 'http', detail);
  const token = (data as { access_token?: unknown })?.access_token;
  if (typeof token !== 'string' || !token)
    throw new TokenRequestError('answered without an access_token', status, 'bad-response');
  const expiresIn = Number((data as { expires_in?: unknown }).expires_in);
  return { value: `Bearer ${token}`, lifetimeMs: expiresIn > 0 ? expiresIn * 1000 : 300_000 };
}
