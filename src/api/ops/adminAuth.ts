/**
 * Admin access for operations actions (replaying dead letters): the API's own access control (API key
 * or bearer JWT, src/api/auth.ts) plus the admin scope. With access control configured off, the site
 * has chosen an open API and admin actions are open too (the status page's CSRF checks still apply).
 */
import type { RequestHandler } from 'express';
import type { Authenticator } from '../auth';
import { escapeHtml } from './format';

/** Granted to API keys (`api.auth.keys[].scopes`) or carried by tokens that may run admin actions. */
export const ADMIN_SCOPE = 'bridge/admin';

export function adminAuth(
  authenticate: Authenticator | undefined,
  requiredScope: string = ADMIN_SCOPE,
): RequestHandler {
  return async (req, res, next) => {
    if (!authenticate) return next();
    const deny = (status: number, text: string, headers: Record<string, string> = {}) => {
      res.status(status).set(headers);
      if (req.is('application/json') || req.accepts(['html', 'json']) === 'json') res.json({ error: text });
      else
        res
          .type('html')
          .send(
            `<!doctype html><meta charset="utf-8"><title>Not allowed</title><p>${escapeHtml(text)}</p><p><a href="../status">Back to the status page</a></p>`,
          );
    };
    try {
      const principal = await authenticate({
        authorization: req.get('authorization'),
        'x-api-key': req.get('x-api-key'),
      });
      if (!principal.scopes.includes(requiredScope)) {
        return deny(403, `Client "${principal.client}" lacks the "${requiredScope}" scope this action needs.`);
      }
      res.locals.principal = principal;
      next();
    } catch (err) {
      const e = err as { status?: number; message?: string; headers?: Record<string, string> };
      if (typeof e.status === 'number') return deny(e.status, e.message ?? 'Not allowed.', e.headers);
      next(err);
    }
  };
}
