/**
 * URLs the bridge calls: validated as http(s) with a host at start-up, and shown in error messages
 * without the parts that may carry secrets (user:password@, query string, fragment).
 */
import { z } from 'zod';

/** An absolute http:// or https:// URL with a host ("htp:/x" and "pacs:8042" are typos, not URLs). */
export function isHttpUrl(value: string): boolean {
  if (!/^https?:\/\/[^/?#]/i.test(value)) return false;
  try {
    return new URL(value).hostname !== '';
  } catch {
    return false;
  }
}

export const httpUrl = z
  .string()
  .refine(isHttpUrl, (v) => ({ message: `"${redactUrl(v)}" is not an http(s) URL with a host` }));

/** The URL as it may appear in a message or log: no user:password@, no query, no fragment (even when malformed). */
export function redactUrl(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)?[^/?#]*@/i, '$1').replace(/[?#].*$/s, '');
}
