/** The ImagingStudy search index in the PostgreSQL store: rows from ../studyIndex, SQL with $n placeholders. */
import type { PoolClient } from 'pg';
import type { StudyIndexFilter, StudyIndexRow } from '../studyIndex';

/** Replaces the index entries of one ImagingStudy (call inside the transaction that writes it). */
export async function indexStudy(c: PoolClient, row: StudyIndexRow): Promise<void> {
  await unindexStudy(c, row.resourceId);
  await c.query(
    'INSERT INTO imaging_study_index (resource_id, source_id, started_day, started_ms, status) VALUES ($1, $2, $3, $4, $5)',
    [row.resourceId, row.sourceId, row.startedDay, row.startedMs, row.status],
  );
  if (!row.tokens.length) return;
  await c.query(
    `INSERT INTO imaging_study_token (resource_id, kind, value)
       SELECT $1, kind, value FROM unnest($2::text[], $3::text[]) AS t (kind, value) ON CONFLICT DO NOTHING`,
    [row.resourceId, row.tokens.map((t) => t.kind), row.tokens.map((t) => t.value)],
  );
}

export async function unindexStudy(c: PoolClient, resourceId: string): Promise<void> {
  await c.query('DELETE FROM imaging_study_index WHERE resource_id = $1', [resourceId]);
  await c.query('DELETE FROM imaging_study_token WHERE resource_id = $1', [resourceId]);
}

/** SQL (WHERE clause over `i`, the index row) and its parameters, numbered from $1. */
export function filterSqlPg(f: StudyIndexFilter): { where: string; params: unknown[] } {
  const params: unknown[] = [];
  const p = (v: unknown) => `$${params.push(v)}`;
  const where = [`i.source_id = ${p(f.sourceId)}`];
  for (const any of f.tokens ?? []) {
    if (!any.length) {
      where.push('FALSE');
      continue;
    }
    const alternatives = any.map((t) => `(t.kind = ${p(t.kind)} AND t.value = ${p(t.value)})`).join(' OR ');
    where.push(`i.resource_id IN (SELECT t.resource_id FROM imaging_study_token t WHERE ${alternatives})`);
  }
  if (f.dayFrom !== undefined) where.push(`i.started_day >= ${p(f.dayFrom)}`);
  if (f.dayTo !== undefined) where.push(`i.started_day <= ${p(f.dayTo)}`);
  for (const b of f.instant ?? []) {
    if (b.from !== undefined) where.push(`(i.started_ms IS NULL OR i.started_ms >= ${p(b.from)}::float8)`);
    if (b.to !== undefined) where.push(`(i.started_ms IS NULL OR i.started_ms < ${p(b.to)}::float8)`);
  }
  for (const any of f.statuses ?? [])
    where.push(any.length ? `i.status IN (${any.map((s) => p(s)).join(', ')})` : 'FALSE');
  return { where: where.join(' AND '), params };
}
