/** Stored resources and their search index in the PostgreSQL store. */
import type { ImagingStudy, Resource } from 'fhir/r4';
import type { Pool, PoolClient } from 'pg';
import type { ResourceRepository } from '../repositories';
import { nextVersion, toMeta } from '../sqlite/resources';
import { studyIndexRow, type StudyIndexFilter } from '../studyIndex';
import type { PutResult, ResourcePut, StoredResourceMeta } from '../types';
import { lockKeys, one, rows, transaction, type Queryable } from './db';
import { filterSqlPg, indexStudy, unindexStudy } from './studyIndex';

type MetaRow = Parameters<typeof toMeta>[0];

const META_SQL = `SELECT resource_type, id, source_id, study_uid, version_id, content_hash, created_by_bridge, last_updated
  FROM resources WHERE resource_type = $1 AND id = $2`;

const UPSERT_SQL = `INSERT INTO resources (resource_type, id, source_id, study_uid, version_id, content_hash, created_by_bridge, last_updated, json)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
  ON CONFLICT (resource_type, id) DO UPDATE SET source_id = EXCLUDED.source_id, study_uid = EXCLUDED.study_uid,
    version_id = EXCLUDED.version_id, content_hash = EXCLUDED.content_hash, last_updated = EXCLUDED.last_updated, json = EXCLUDED.json`;

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

  /** All or none, each resource locked first so two replicas writing one resource number its versions in turn. */
  async put(puts: ResourcePut[]): Promise<PutResult[]> {
    if (!puts.length) return [];
    return transaction(this.pool, async (c) => {
      await lockKeys(
        c,
        'resource',
        puts.map((p) => `${p.resource.resourceType}/${p.resource.id}`),
      );
      const out: PutResult[] = [];
      for (const p of puts) out.push(await this.putOne(c, p));
      return out;
    });
  }

  private async putOne(c: PoolClient, p: ResourcePut): Promise<PutResult> {
    const prev = await this.metaOn(c, p.resource.resourceType, p.resource.id);
    const next = nextVersion(prev, p);
    if (!next)
      return {
        versionId: String(prev!.versionId),
        unchanged: true,
        created: false,
        createdByBridge: prev!.createdByBridge,
      };
    await c.query(UPSERT_SQL, [
      p.resource.resourceType,
      p.resource.id,
      next.sourceId,
      next.studyUid,
      next.versionId,
      p.contentHash,
      next.createdByBridge,
      next.lastUpdated,
      JSON.stringify(next.stored),
    ]);
    // The search index follows every ImagingStudy write in the same transaction.
    if (p.resource.resourceType === 'ImagingStudy')
      await indexStudy(c, studyIndexRow(next.stored as ImagingStudy, p.resource.id, next.sourceId));
    return {
      versionId: String(next.versionId),
      unchanged: false,
      created: !prev,
      createdByBridge: next.createdByBridge,
    };
  }

  async delete(resourceType: string, id: string): Promise<boolean> {
    return transaction(this.pool, async (c) => {
      if (resourceType === 'ImagingStudy') await unindexStudy(c, id);
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
