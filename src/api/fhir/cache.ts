/**
 * Response and per-study caching (node-cache, TTL) plus in-flight de-duplication: while one request
 * for a key is running, identical requests wait for its answer instead of asking the PACS again.
 * Either can be switched off. Only successful answers are cached; a failure is shared by the
 * requests that were waiting for it and then forgotten.
 */
import NodeCache from 'node-cache';

export interface CacheOptions {
  enabled: boolean;
  ttlSeconds: number;
  maxKeys: number;
  dedupe: boolean;
}

export class AnswerCache<T> {
  private readonly cache?: NodeCache;
  private readonly inFlight = new Map<string, Promise<T>>();
  /** Answers served from the cache or from a shared in-flight request. */
  hits = 0;
  misses = 0;

  constructor(private readonly o: CacheOptions) {
    // useClones off: cached values are frozen by the caller's convention (never mutated after caching).
    if (o.enabled)
      this.cache = new NodeCache({
        stdTTL: o.ttlSeconds,
        checkperiod: Math.max(1, Math.min(600, o.ttlSeconds)),
        maxKeys: o.maxKeys,
        useClones: false,
      });
  }

  get(key: string): T | undefined {
    return this.cache?.get<T>(key);
  }

  /** `get`, counted as a hit or a miss (for callers that `set` the answer themselves). */
  lookup(key: string): T | undefined {
    const value = this.get(key);
    if (value === undefined) this.misses++;
    else this.hits++;
    return value;
  }

  set(key: string, value: T): void {
    if (!this.cache) return;
    try {
      this.cache.set(key, value);
    } catch {
      // Full (maxKeys): serve without caching rather than fail the request.
    }
  }

  /** The cached answer, a running identical request's answer, or a new one from `load`. */
  async getOrLoad(key: string, load: () => Promise<T>): Promise<T> {
    const cached = this.get(key);
    if (cached !== undefined) {
      this.hits++;
      return cached;
    }
    const running = this.o.dedupe ? this.inFlight.get(key) : undefined;
    if (running) {
      this.hits++;
      return running;
    }
    this.misses++;
    const p = load().then((value) => {
      this.set(key, value);
      return value;
    });
    if (this.o.dedupe) {
      this.inFlight.set(key, p);
      const forget = () => this.inFlight.delete(key);
      p.then(forget, forget);
    }
    return p;
  }

  clear(): void {
    this.cache?.flushAll();
  }

  close(): void {
    this.cache?.close();
  }
}
