/**
 * The quick start's orchestration: a local Orthanc on port 8042 (data in ./data/orthanc) loaded with
 * synthetic studies and Debian's pydicom samples, then the bridge's own executable run against it
 * with the default configuration (config/default.json). Ctrl-C stops everything.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import axios from 'axios';
import { startOrthanc } from '../test/harness/orthanc';
import { generateCorpus, loadStudies } from '../test/fixtures/synthetic';
import { loadPydicomSamples } from '../test/fixtures/pydicomSamples';

const PORT = Number(process.env.QUICKSTART_PACS_PORT ?? 8042);
const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist/cli/main.js');

function runCli(args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: 'inherit', cwd: root });
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

async function main() {
  const up = await axios.get(`http://127.0.0.1:${PORT}/system`, { timeout: 1000 }).then(() => true, () => false);
  if (up) throw new Error(`port ${PORT} is already in use; stop what runs there or set QUICKSTART_PACS_PORT`);
  const storageDir = path.join(root, 'data/orthanc');
  mkdirSync(storageDir, { recursive: true });
  const orthanc = await startOrthanc({ port: PORT, storageDir });
  const stop = async () => {
    await orthanc.kill();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  const { data: stats } = await orthanc.rest.get('/statistics');
  if (Number(stats.CountStudies) === 0) {
    const studies = generateCorpus({ seed: 20261127, studies: 40, undated: 3 });
    await loadStudies(orthanc, studies);
    const samples = await loadPydicomSamples(orthanc);
    console.log(`Loaded ${studies.length} synthetic studies and ${samples.filter((s) => s.accepted).length} pydicom sample files.`);
  }
  console.log(`\nLocal PACS (Orthanc): ${orthanc.restUrl}/app/explorer.html  DICOMweb: ${orthanc.dicomWebBase}\n`);

  const code = await runCli(['discover']);
  if (code !== 0) throw new Error(`discover exited with ${code}`);
  console.log('\nThe PACS stays up until Ctrl-C.');
}

main().catch((err) => {
  console.error(`quickstart: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
