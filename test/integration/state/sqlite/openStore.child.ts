/**
 * Child process for the concurrent-start test: for each round k, waits until the shared start time of
 * that round (so both processes open the new store file together), opens it (migrating it), records a
 * run, and prints what happened in each round as JSON.
 */
import path from 'node:path';
import { openSqliteStore } from '../../../../src/state';

const [dir, startAt, rounds, spacingMs, name] = process.argv.slice(2);
const results: { ok: boolean; version?: number; error?: string }[] = [];

void (async () => {
  for (let k = 0; k < Number(rounds); k++) {
    const at = Number(startAt) + k * Number(spacingMs);
    // Busy-wait: a timer is too coarse to line two processes up within a millisecond.
    while (Date.now() < at);
    try {
      const store = openSqliteStore(path.join(dir!, `round-${k}`, 'bridge.sqlite'));
      await store.runs.startRun(name!, 'poll');
      results.push({ ok: true, version: store.schemaVersion });
      await store.close();
    } catch (err) {
      results.push({ ok: false, error: (err as Error).message });
    }
  }
  process.stdout.write(JSON.stringify(results));
})();
