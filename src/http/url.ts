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

/** The URL as it may appear in a message or log: no credentials, no query, no fragment. */
export function redactUrl(value: string): string {
  try {
    const u = new URL(value);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.toString();
  } catch {
    // Not a URL: drop anything up to an "@" that may be user:password.
    return value.replace(/^([^:/?#]*:\/\/)?[^/?#@]*@/, '$1').replace(/[?#].*$/, '');
  }
}
