// Runs an ImagingStudy search with fhir-kit-client and follows its next links (an ES module, so run by node):
// node fhirKitSearch.mjs <baseUrl> <query> [Prefer header]
//   → {"ids": [...in the order given], "pages": n, "self": "<first page's self link>"}, or on an HTTP error
//   → {"status": 400, "diagnostics": "..."} (the OperationOutcome's first issue).
import { Client } from 'fhir-kit-client';

const [baseUrl, query, prefer] = process.argv.slice(2);
const client = new Client({ baseUrl, customHeaders: prefer ? { Prefer: prefer } : {} });
const ids = [];
let pages = 0;
let self;
try {
  let bundle = await client.search({
    resourceType: 'ImagingStudy',
    searchParams: Object.fromEntries(new URLSearchParams(query)),
  });
  self = bundle.link?.find((l) => l.relation === 'self')?.url;
  while (bundle) {
    pages++;
    for (const e of bundle.entry ?? []) if (e.search?.mode === 'match') ids.push(e.resource.id);
    bundle = await client.nextPage({ bundle });
  }
  process.stdout.write(JSON.stringify({ ids, pages, self }));
} catch (err) {
  if (!err.response) throw err;
  const data = typeof err.response.data === 'string' ? JSON.parse(err.response.data) : err.response.data;
  process.stdout.write(JSON.stringify({ status: err.response.status, diagnostics: data?.issue?.[0]?.diagnostics }));
}
