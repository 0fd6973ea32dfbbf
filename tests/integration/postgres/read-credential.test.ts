import pg from 'pg';
import type { TargetConfig } from '../../../agent/config';
import { checkReadCredential, ReadCredentialError } from '../../../agent/postgres/read-credential';
import { startTestPostgres, type TestPostgres } from '../../support/postgres';

const PROBE = 'tk_probe';

describe('the read credential check at agent start (real PostgreSQL)', () => {
  let server: TestPostgres;
  let admin: pg.Client;

  beforeAll(async () => {
    server = await startTestPostgres();
    admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    await admin.query(`CREATE ROLE ${PROBE} LOGIN PASSWORD 'probe-pw'`);
    await admin.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${PROBE}`);
    await admin.query('CREATE ROLE tk_writers NOLOGIN');
    await admin.query('GRANT UPDATE ON customers TO tk_writers');
  }, 60_000);
  afterAll(async () => {
    await admin?.end();
    await server?.stop();
  });

  const target = (user: string, password: string): TargetConfig => ({
    name: 'probe',
    protocol: 'postgres',
    listen: { host: '127.0.0.1', port: 0 },
    upstream: { host: '127.0.0.1', port: server.port, database: 'demo' },
    readCredential: { user, password },
    writeCredential: server.write,
  });

  it('accepts a role that can only SELECT (the demo read role)', async () => {
    await expect(checkReadCredential(target(server.read.user, server.read.password))).resolves.toBeUndefined();
    await expect(checkReadCredential(target(PROBE, 'probe-pw'))).resolves.toBeUndefined();
  });

  it.each([
    ['INSERT on a table', `GRANT INSERT ON customers TO ${PROBE}`, `REVOKE INSERT ON customers FROM ${PROBE}`, /can change public.customers/, undefined],
    ['UPDATE on one column', `GRANT UPDATE (name) ON customers TO ${PROBE}`, `REVOKE UPDATE (name) ON customers FROM ${PROBE}`, /can change public.customers/, undefined],
    ['TRUNCATE on a table', `GRANT TRUNCATE ON orders TO ${PROBE}`, `REVOKE TRUNCATE ON orders FROM ${PROBE}`, /can change public.orders/, undefined],
    ['TRIGGER on a table', `GRANT TRIGGER ON orders TO ${PROBE}`, `REVOKE TRIGGER ON orders FROM ${PROBE}`, /can change public.orders/, undefined],
    ['CREATE on a schema', `GRANT CREATE ON SCHEMA public TO ${PROBE}`, `REVOKE CREATE ON SCHEMA public FROM ${PROBE}`, /can create objects in schema public/, undefined],
    ['CREATE on the database', `GRANT CREATE ON DATABASE demo TO ${PROBE}`, `REVOKE CREATE ON DATABASE demo FROM ${PROBE}`, /can create schemas in database demo/, undefined],
    ['BYPASSRLS', `ALTER ROLE ${PROBE} BYPASSRLS`, `ALTER ROLE ${PROBE} NOBYPASSRLS`, /bypasses row-level security/, undefined],
    ['REPLICATION', `ALTER ROLE ${PROBE} REPLICATION`, `ALTER ROLE ${PROBE} NOREPLICATION`, /can replicate/, undefined],
    ['CREATEROLE', `ALTER ROLE ${PROBE} CREATEROLE`, `ALTER ROLE ${PROBE} NOCREATEROLE`, /can create roles/, undefined],
    ['membership in pg_write_all_data', `GRANT pg_write_all_data TO ${PROBE}`, `REVOKE pg_write_all_data FROM ${PROBE}`, /member of pg_write_all_data/, undefined],
    ['membership in pg_execute_server_program', `GRANT pg_execute_server_program TO ${PROBE}`, `REVOKE pg_execute_server_program FROM ${PROBE}`, /member of pg_execute_server_program/, undefined],
    ['membership (without INHERIT) in a role that can UPDATE', `GRANT tk_writers TO ${PROBE} WITH INHERIT FALSE`, `REVOKE tk_writers FROM ${PROBE}`, /tk_writers can change public.customers/, undefined],
    ['USAGE on a sequence (nextval)', 'CREATE SEQUENCE probe_seq', 'DROP SEQUENCE probe_seq', /can advance sequence public.probe_seq/, `GRANT USAGE ON SEQUENCE probe_seq TO ${PROBE}`],
  ])('refuses a read role with %s, saying what it can do', async (_name, grant, revoke, reason, extra) => {
    await admin.query(grant);
    if (extra) await admin.query(extra);
    try {
      const checked = checkReadCredential(target(PROBE, 'probe-pw'));
      await expect(checked).rejects.toThrow(ReadCredentialError);
      await expect(checked).rejects.toThrow(reason);
    } finally {
      await admin.query(revoke);
    }
    await expect(checkReadCredential(target(PROBE, 'probe-pw'))).resolves.toBeUndefined();
  });
});
