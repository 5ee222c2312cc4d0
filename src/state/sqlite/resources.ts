/** Stored resources and their search index in the embedded store. */
import type Database from 'better-sqlite3';
import type { ImagingStudy, Resource } from 'fhir/r4';
import type { ResourceRepository } from '../repositories';
import { nextVersion, putResult, toMeta, type MetaRow } from '../rows';
import { studyIndexRow, type StudyIndexFilter } from '../studyIndex';
import type { PutResult, ResourcePut, StoredResourceMeta } from '../types';
import { statement } from './statements';
import { filterSql, indexStudy, unindexStudy } from './studyIndex';

const META_SQL =
  'SELECT resource_type, id, source_id, study_uid, version_id, content_hash, created_by_bridge, last_updated FROM resources WHERE resource_type = ? AND id = ?';

export class SqliteResources implements ResourceRepository {
  constructor(private readonly db: Database.Database) {}

  private metaNow(resourceType: string, id: string): StoredResourceMeta | undefined {
    const row = statement(this.db, META_SQL).get(resourceType, id) as MetaRow | undefined;
    return row && toMeta(row);
  }

  async get<T extends Resource = Resource>(resourceType: string, id: string): Promise<T | undefined> {
    const row = statement(this.db, 'SELECT json FROM resources WHERE resource_type = ? AND id = ?').get(
      resourceType,
      id,
    ) as { json: string } | undefined;
    return row ? (JSON.parse(row.json) as T) : undefined;
  }

  async getMeta(resourceType: string, id: string): Promise<StoredResourceMeta | undefined> {
    return this.metaNow(resourceType, id);
  }

  async studyResource(sourceId: string, studyUid: string): Promise<StoredResourceMeta | undefined> {
    const row = statement(
      this.db,
      `SELECT id FROM resources WHERE resource_type = 'ImagingStudy' AND source_id = ? AND study_uid = ?`,
    ).get(sourceId, studyUid) as { id: string } | undefined;
    return row && this.metaNow('ImagingStudy', row.id);
  }

  async listImagingStudies(filter: { sourceId?: string } = {}): Promise<ImagingStudy[]> {
    const rows = filter.sourceId
      ? statement(
          this.db,
          `SELECT json FROM resources WHERE resource_type = 'ImagingStudy' AND source_id = ? ORDER BY id`,
        ).all(filter.sourceId)
      : statement(this.db, `SELECT json FROM resources WHERE resource_type = 'ImagingStudy' ORDER BY id`).all();
    return (rows as { json: string }[]).map((r) => JSON.parse(r.json) as ImagingStudy);
  }

  async put(puts: ResourcePut[]): Promise<PutResult[]> {
    return this.db.transaction(() => puts.map((p) => this.putOne(p)))();
  }

  private putOne(p: ResourcePut): PutResult {
    const prev = this.metaNow(p.resource.resourceType, p.resource.id);
    const next = nextVersion(prev, p);
    if (!next) return putResult(prev, next);
    statement(
      this.db,
      `INSERT INTO resources (resource_type, id, source_id, study_uid, version_id, content_hash, created_by_bridge, last_updated, json)
         VALUES (@type, @id, @sourceId, @studyUid, @versionId, @hash, @created, @lastUpdated, @json)
         ON CONFLICT (resource_type, id) DO UPDATE SET source_id = excluded.source_id, study_uid = excluded.study_uid, version_id = excluded.version_id,
           content_hash = excluded.content_hash, last_updated = excluded.last_updated, json = excluded.json`,
    ).run({
      type: p.resource.resourceType,
      id: p.resource.id,
      sourceId: next.sourceId,
      studyUid: next.studyUid,
      versionId: next.versionId,
      hash: p.contentHash,
      created: next.createdByBridge ? 1 : 0,
      lastUpdated: next.lastUpdated,
      json: JSON.stringify(next.stored),
    });
    // The search index follows every ImagingStudy write in the same transaction.
    if (p.resource.resourceType === 'ImagingStudy')
      indexStudy(this.db, studyIndexRow(next.stored as ImagingStudy, p.resource.id, next.sourceId));
    return putResult(prev, next);
  }

  async delete(resourceType: string, id: string): Promise<boolean> {
    return this.db.transaction(() => {
      if (resourceType === 'ImagingStudy') unindexStudy(this.db, id);
      return (
        statement(this.db, 'DELETE FROM resources WHERE resource_type = ? AND id = ?').run(resourceType, id).changes > 0
      );
    })();
  }

  async searchImagingStudies(
    filter: StudyIndexFilter,
    page: { after?: string; limit: number },
  ): Promise<ImagingStudy[]> {
    const { where, params } = filterSql(filter);
    const rows = statement(
      this.db,
      `SELECT r.json FROM imaging_study_index i JOIN resources r ON r.resource_type = 'ImagingStudy' AND r.id = i.resource_id
         WHERE ${where}${page.after !== undefined ? ' AND i.resource_id > ?' : ''} ORDER BY i.resource_id LIMIT ?`,
    ).all(...params, ...(page.after !== undefined ? [page.after] : []), page.limit) as { json: string }[];
    return rows.map((r) => JSON.parse(r.json) as ImagingStudy);
  }
}
