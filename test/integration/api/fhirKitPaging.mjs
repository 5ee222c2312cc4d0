// Pages through an ImagingStudy search with fhir-kit-client (an ES module, so run by node, not Jest):
// node fhirKitPaging.mjs <baseUrl> <query>  →  {"ids": [...], "pages": n} on stdout.
import { Client } from 'fhir-kit-client';

const [baseUrl, query] = process.argv.slice(2);
const client = new Client({ baseUrl });
const ids = [];
let pages = 0;
let bundle = await client.search({
  resourceType: 'ImagingStudy',
  searchParams: Object.fromEntries(new URLSearchParams(query)),
});
while (bundle) {
  pages++;
  for (const e of bundle.entry ?? []) if (e.search?.mode === 'match') ids.push(e.resource.id);
  bundle = await client.nextPage({ bundle });
}
process.stdout.write(JSON.stringify({ ids, pages }));
