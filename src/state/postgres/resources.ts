/** Stored resources and their search index in the PostgreSQL store. */
import type { ImagingStudy, Resource } from 'fhir/r4';
import type { Pool, PoolClient } from 'pg';
import type { ResourceRepository } from '../repositories';
import { nextVersion, putResult, toMeta, type MetaRow } from '../rows';
import { studyIndexRow, type StudyIndexFilter } from '../studyIndex';
import type { PutResult, ResourcePut, StoredResourceMeta } from '../types';
import { lockKeys, one, rows, transaction, type Queryable } from './db';
import { filterSqlPg, indexStudies, unindexStudies } from './studyIndex';

type NextVersion = NonNullable<ReturnType<typeof nextVersion>>;

type Write = { p: ResourcePut; next: NextVersion };

const resourceKey = (type: string, id: string) => `${type}/${id}`;
const keyOf = (p: ResourcePut) => resourceKey(p.resource.resourceType, p.resource.id);

/** What a put leaves stored, as the next put of the same resource in the batch must see it. */
const metaOf = (p: ResourcePut, next: NextVersion): StoredResourceMeta => ({
  resourceType: p.resource.resourceType,
  id: p.resource.id,
  sourceId: next.sourceId,
  studyUid: next.studyUid,
  versionId: next.versionId,
  contentHash: p.contentHash,
  createdByBridge: next.createdByBridge,
  lastUpdated: next.lastUpdated,
});

const META_SQL = `SELECT resource_type, id, source_id, study_uid, version_id, content_hash, created_by_bridge, last_updated
  FROM resources WHERE resource_type = $1 AND id = $2`;

const UPSERT_SQL = `INSERT INTO resources (resource_type, id, source_id, study_uid, version_id, content_hash, created_by_bridge, last_updated, json)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::bool[], $8::text[], $9::text[])
  ON CONFLICT (resource_type, id) DO UPDATE SET source_id = EXCLUDED.source_id, study_uid = EXCLUDED.study_uid,
    version_id = EXCLUDED.version_id, content_hash = EXCLUDED.content_hash, last_updated = EXCLUDED.last_updated, json = EXCLUDED.json`;

/**
 * Each put's outcome, in order, as SQLite's one-by-one puts decide them (a resource put twice in one batch
 * sees its first put), and the final state of each changed resource, to be written at once.
 */
function decideVersions(puts: ResourcePut[], stored: Map<string, StoredResourceMeta>) {
  const writes = new Map<string, Write>();
  const results = puts.map((p): PutResult => {
    const prev = stored.get(keyOf(p));
    const next = nextVersion(prev, p);
    if (next) {
      stored.set(keyOf(p), metaOf(p, next));
      writes.set(keyOf(p), { p, next });
    }
    return putResult(prev, next);
  });
  return { results, writes: [...writes.values()] };
}

export class PgResources implements ResourceRepository {
  constructor(private readonly pool: Pool) {}

  private async metaOn(db: Queryable, resourceType: string, id: string): Promise<StoredResourceMeta | undefined> {
    const row = await one<MetaRow>(db, META_SQL, [resourceType, id]);
    return row && toMeta(row);
  }

  async get<T extends Resource = Resource>(resourceType: string, id: string): Promise<T | undefined> {
    const row = await one<{ json: string }>(
      this.pool,
      'SELECT json FROM resources WHERE resource_type = $1 AND id = $2',
      [resourceType, id],
    );
    return row ? (JSON.parse(row.json) as T) : undefined;
  }

  async getMeta(resourceType: string, id: string): Promise<StoredResourceMeta | undefined> {
    return this.metaOn(this.pool, resourceType, id);
  }

  async studyResource(sourceId: string, studyUid: string): Promise<StoredResourceMeta | undefined> {
    const row = await one<MetaRow>(
      this.pool,
      `SELECT resource_type, id, source_id, study_uid, version_id, content_hash, created_by_bridge, last_updated
         FROM resources WHERE resource_type = 'ImagingStudy' AND source_id = $1 AND study_uid = $2 ORDER BY id LIMIT 1`,
      [sourceId, studyUid],
    );
    return row && toMeta(row);
  }

  async listImagingStudies(filter: { sourceId?: string } = {}): Promise<ImagingStudy[]> {
    const found = filter.sourceId
      ? await rows<{ json: string }>(
          this.pool,
          `SELECT json FROM resources WHERE resource_type = 'ImagingStudy' AND source_id = $1 ORDER BY id`,
          [filter.sourceId],
        )
      : await rows<{ json: string }>(
          this.pool,
          `SELECT json FROM resources WHERE resource_type = 'ImagingStudy' ORDER BY id`,
        );
    return found.map((r) => JSON.parse(r.json) as ImagingStudy);
  }

  /**
   * All or none, in a few statements whatever the batch size: each resource locked first (so two replicas
   * writing one resource number its versions in turn), what is stored read at once, versions decided in
   * order as SQLite's one-by-one puts decide them, then every changed resource and its index written at once.
   */
  async put(puts: ResourcePut[]): Promise<PutResult[]> {
    if (!puts.length) return [];
    return transaction(this.pool, async (c) => {
      await lockKeys(c, 'resource', puts.map(keyOf));
      const { results, writes } = decideVersions(puts, await this.metasOn(c, puts));
      await this.writeAll(c, writes);
      return results;
    });
  }

  private async metasOn(c: PoolClient, puts: ResourcePut[]): Promise<Map<string, StoredResourceMeta>> {
    const found = await rows<MetaRow>(
      c,
      `SELECT resource_type, id, source_id, study_uid, version_id, content_hash, created_by_bridge, last_updated
         FROM resources WHERE (resource_type, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
      [puts.map((p) => p.resource.resourceType), puts.map((p) => p.resource.id)],
    );
    return new Map(found.map((r) => [resourceKey(r.resource_type, r.id), toMeta(r)]));
  }

  /** One upsert for every changed resource, then the search index of the changed ImagingStudies. */
  private async writeAll(c: PoolClient, writes: Write[]) {
    if (!writes.length) return;
    const col = <T>(f: (w: (typeof writes)[number]) => T) => writes.map(f);
    await c.query(UPSERT_SQL, [
      col((w) => w.p.resource.resourceType),
      col((w) => w.p.resource.id),
      col((w) => w.next.sourceId),
      col((w) => w.next.studyUid),
      col((w) => w.next.versionId),
      col((w) => w.p.contentHash),
      col((w) => w.next.createdByBridge),
      col((w) => w.next.lastUpdated),
      col((w) => JSON.stringify(w.next.stored)),
    ]);
    // The search index follows every ImagingStudy write in the same transaction.
    const studies = writes.filter((w) => w.p.resource.resourceType === 'ImagingStudy');
    await indexStudies(
      c,
      studies.map((w) => studyIndexRow(w.next.stored as ImagingStudy, w.p.resource.id, w.next.sourceId)),
    );
  }

  async delete(resourceType: string, id: string): Promise<boolean> {
    return transaction(this.pool, async (c) => {
      if (resourceType === 'ImagingStudy') await unindexStudies(c, [id]);
      const res = await c.query('DELETE FROM resources WHERE resource_type = $1 AND id = $2', [resourceType, id]);
      return (res.rowCount ?? 0) > 0;
    });
  }

  async searchImagingStudies(
    filter: StudyIndexFilter,
    page: { after?: string; limit: number },
  ): Promise<ImagingStudy[]> {
    const { where, params } = filterSqlPg(filter);
    const after = page.after !== undefined ? ` AND i.resource_id > $${params.push(page.after)}` : '';
    const limit = `$${params.push(page.limit)}`;
    const found = await rows<{ json: string }>(
      this.pool,
      `SELECT r.json FROM imaging_study_index i JOIN resources r ON r.resource_type = 'ImagingStudy' AND r.id = i.resource_id
         WHERE ${where}${after} ORDER BY i.resource_id LIMIT ${limit}`,
      params,
    );
    return found.map((r) => JSON.parse(r.json) as ImagingStudy);
  }
}
