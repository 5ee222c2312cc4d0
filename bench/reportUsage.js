// Preloaded (`node -r`) into a bridge process the benchmarks start: on exit, writes the process's
// peak RSS and CPU time to $BENCH_USAGE_FILE, so memory is measured in the bridge, not the bench.
'use strict';
const { writeFileSync } = require('node:fs');
const file = process.env.BENCH_USAGE_FILE;
if (file) {
  process.on('exit', () => {
    const u = process.resourceUsage();
    writeFileSync(file, JSON.stringify({ maxRssKb: u.maxRSS, cpuMs: (u.userCPUTime + u.systemCPUTime) / 1000 }));
  });
}
