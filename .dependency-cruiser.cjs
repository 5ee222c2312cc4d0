/**
 * The layers of src/, checked by dependency-cruiser in `npm run lint` (docs/architecture.md draws them).
 *
 * A sync flows one way: dicomweb (reads the PACS) → mapping (DICOM → FHIR) → sync (runs, decides) →
 * sinks / state (writes). A folder may import the folders upstream of it in that flow, never downstream.
 * dicom (the DICOM data model: DICOM JSON reading, tags, the attribute table) sits below dicomweb and
 * mapping, so the mapper reads DICOM without depending on PACS access; every layer from there up may import it.
 * api and cli sit above them all (they build the parts and wire them); time, log, http and config sit
 * below them all. metrics is a shared service built by api/cli: it reads the store and the sync's coverage
 * at scrape time, so it sits above sync, and lower layers see only interfaces they own (src/http's
 * OutboundMetrics, a source's stats()).
 *
 * MAY_IMPORT is the exact list of folders each folder may import (besides itself); any other edge fails.
 */
const BASE = ['time', 'log', 'http', 'config'];
const MAY_IMPORT = {
  time: [],
  log: [],
  http: ['log'],
  // config/schema.ts composes the settings each layer owns (see the config-leaves rule below).
  config: ['time', 'http'],
  // A data model: DICOM dates and times only (src/time), nothing about talking to anything.
  dicom: ['time'],
  dicomweb: ['dicom', ...BASE],
  mapping: ['dicom', ...BASE],
  state: [...BASE],
  // The embedded sink writes into the state store.
  sinks: ['dicom', 'mapping', 'state', ...BASE],
  sync: ['dicom', 'dicomweb', 'mapping', 'sinks', 'state', ...BASE],
  metrics: ['dicom', 'dicomweb', 'state', 'sync', ...BASE],
  api: ['dicom', 'dicomweb', 'mapping', 'sinks', 'state', 'sync', 'metrics', ...BASE],
  cli: ['api', 'dicom', 'dicomweb', 'mapping', 'sinks', 'state', 'sync', 'metrics', ...BASE],
};

/**
 * Each layer owns its settings' schema in a leaf `config.ts` that imports only the base layers; config/schema.ts
 * composes them into the one configuration. Kept deliberately (docs/decisions.md): a layer's settings live
 * beside the code that reads them, and config stays below every layer because the leaves import nothing above it.
 */
const CONFIG_LEAVES = '^src/(api|sync|state|sinks/fhir)/config\\.ts$';

const layerRules = Object.entries(MAY_IMPORT).map(([layer, allowed]) => {
  const others = Object.keys(MAY_IMPORT).filter((l) => l !== layer && !allowed.includes(l));
  return {
    name: `layer-${layer}`,
    comment: allowed.length
      ? `src/${layer} may import only ${allowed.join(', ')}.`
      : `src/${layer} imports nothing else in src.`,
    severity: 'error',
    from: { path: `^src/${layer}/` },
    to: { path: `^src/(${others.join('|')})/`, ...(layer === 'config' ? { pathNot: CONFIG_LEAVES } : {}) },
  };
});

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'config-leaves',
      comment: "A layer's config.ts imports only the base layers, so config/schema.ts can compose it without a cycle.",
      severity: 'error',
      from: { path: CONFIG_LEAVES },
      to: { path: '^src/', pathNot: ['^src/(time|log|http)/', CONFIG_LEAVES] },
    },
    {
      name: 'through-the-index',
      comment: 'Another folder of src is imported through its index.ts (its public API), never a file inside it.',
      severity: 'error',
      from: { path: '^src/([^/]+)/', pathNot: '^src/config/schema\\.ts$' },
      to: { path: '^src/[^/]+/.', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] },
    },
    {
      name: 'through-the-index-config',
      comment: "config/schema.ts too, but for the layers' config leaves it composes (CONFIG_LEAVES).",
      severity: 'error',
      from: { path: '^src/config/schema\\.ts$' },
      to: { path: '^src/[^/]+/.', pathNot: ['^src/config/', '^src/[^/]+/index\\.ts$', CONFIG_LEAVES] },
    },
    {
      name: 'no-circular',
      comment:
        'No import cycles between files, not even of types: a declaration two files need lives where neither imports the other back (docs/decisions.md).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^src/.*\\.d\\.ts$' },
  },
};
