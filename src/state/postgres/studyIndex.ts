/** The ImagingStudy search index in the PostgreSQL store: rows from ../studyIndex, SQL with $n placeholders. */
import type { PoolClient } from 'pg';
import type { StudyIndexFilter, StudyIndexRow } from '../studyIndex';

/** Replaces the index entries of these ImagingStudies (call inside the transaction that writes them). */
export async function indexStudies(c: PoolClient, rows: StudyIndexRow[]): Promise<void> {
  if (!rows.length) return;
  await unindexStudies(
    c,
    rows.map((r) => r.resourceId),
  );
  await c.query(
    `INSERT INTO imaging_study_index (resource_id, source_id, started_day, started_ms, status)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[])`,
    [
      rows.map((r) => r.resourceId),
      rows.map((r) => r.sourceId),
      rows.map((r) => r.startedDay),
      rows.map((r) => r.startedMs),
      rows.map((r) => r.status),
    ],
  );
  const tokens = rows.flatMap((r) => r.tokens.map((t) => [r.resourceId, t.kind, t.value]));
  if (!tokens.length) return;
  await c.query(
    `INSERT INTO imaging_study_token (resource_id, kind, value)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`,
    [0, 1, 2].map((i) => tokens.map((t) => t[i])),
  );
}

export async function unindexStudies(c: PoolClient, resourceIds: string[]): Promise<void> {
  await c.query('DELETE FROM imaging_study_index WHERE resource_id = ANY($1::text[])', [resourceIds]);
  await c.query('DELETE FROM imaging_study_token WHERE resource_id = ANY($1::text[])', [resourceIds]);
}

/** SQL (WHERE clause over `i`, the index row, and `r`, its resource row) and its parameters, numbered from $1. */
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
  // Over `r`, the resource row the search joins: its ISO instants order as strings (COLLATE "C": byte order).
  for (const b of f.lastUpdated ?? []) {
    if (b.from !== undefined) where.push(`r.last_updated COLLATE "C" >= ${p(b.from)}`);
    if (b.to !== undefined) where.push(`r.last_updated COLLATE "C" < ${p(b.to)}`);
  }
  return { where: where.join(' AND '), params };
}
