import { parse } from 'pg-connection-string';
import { postgresSchema } from '../../../src/state/config';
import { connectionUrl, describeLocation, poolConfig } from '../../../src/state/postgres';

const config = (over: Record<string, unknown>) => postgresSchema.parse(over);

describe('PostgreSQL store connection settings', () => {
  it('puts the password from the environment into the connection string, where pg reads it', () => {
    const url = connectionUrl(
      config({ connectionString: 'postgres://bridge@db:5432/bridge', password: 'p@ss:w/rd%' }),
    )!;
    expect(parse(url)).toMatchObject({
      user: 'bridge',
      password: 'p@ss:w/rd%',
      host: 'db',
      port: '5432',
      database: 'bridge',
    });
    expect(connectionUrl(config({ connectionString: 'postgres://bridge@db/bridge' }))).toBe(
      'postgres://bridge@db/bridge',
    );
  });

  it('names the server, database and schema without credentials', () => {
    const c = config({ connectionString: 'postgres://bridge:inline@db:5432/bridge?sslmode=require', schema: 'pfb' });
    expect(describeLocation(c)).toBe('postgres://bridge@db:5432/bridge, schema pfb');
    expect(describeLocation(config({ password: 'x' }))).toBe('postgres (PG* environment), schema pacs_fhir_bridge');
  });

  it('sizes the pool, sets the search path and verifies TLS when asked', () => {
    const p = poolConfig(config({ connectionString: 'postgres://b@db/b', poolSize: 4, schema: 'pfb', ssl: true }));
    expect(p).toMatchObject({ max: 4, options: '-c search_path=pfb', ssl: { rejectUnauthorized: true } });
    expect(poolConfig(config({ password: 'from-env' }))).toMatchObject({ password: 'from-env', max: 10 });
    expect(poolConfig(config({})).ssl).toBeUndefined();
  });

  it('accepts only a plain lower-case schema name (it goes into SQL and startup options as it is)', () => {
    expect(() => config({ schema: 'x; DROP TABLE studies' })).toThrow();
    expect(() => config({ schema: 'Upper' })).toThrow();
  });
});
