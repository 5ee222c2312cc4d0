/**
 * The one timeout rule of every outbound client: an attempt (a token request too) is over within
 * `timeoutMs` of its start, whole exchange, not merely an idle socket; the attempt is then aborted.
 */

export class DeadlineError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
    this.name = 'DeadlineError';
  }
}

/**
 * Runs `start` with a signal that aborts at the deadline, and rejects with a DeadlineError then, even
 * when the aborted call never settles (xhr2's abort() leaves dicomweb-client's promise pending).
 */
export async function withDeadline<T>(timeoutMs: number, start: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new DeadlineError(timeoutMs);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  try {
    return await Promise.race([start(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
