import { asPostgresTarget, passwordOf, pinnedDatabase, type TargetConfig } from '../config';
import { querySimple } from './upstream/simple-query';

export class ReadCredentialError extends Error {
  override name = 'ReadCredentialError';
}

/** Problems reported at most, so that a role that can write everywhere does not fill the log. */
const MAX_PROBLEMS_REPORTED = 10;

/**
 * Everything the read role, or any role it is a member of (and could SET ROLE to), can do beyond
 * reading, one line each: role attributes, memberships in the predefined roles that write, CREATE on
 * the database or a schema, any table privilege but SELECT (column privileges included), and
 * sequences it can advance. MAINTAIN exists from PostgreSQL 17 on.
 */
const READ_ROLE_PROBLEMS_SQL = `
WITH roles AS (
  SELECT r.oid, r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls
  FROM pg_roles r WHERE pg_has_role(current_user, r.oid, 'MEMBER')
), table_writes AS (
  SELECT CASE WHEN current_setting('server_version_num')::int >= 170000
    THEN 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER, MAINTAIN'
    ELSE 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER' END AS privileges
), relations AS (
  SELECT c.oid, c.relkind, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
    -- Everyone may UPDATE pg_settings: it is SET by another name, which every role can do anyway.
    AND c.oid <> 'pg_catalog.pg_settings'::regclass
)
SELECT problem FROM (
  SELECT format('%I is a superuser', rolname) FROM roles WHERE rolsuper
  UNION ALL SELECT format('%I can create roles', rolname) FROM roles WHERE rolcreaterole
  UNION ALL SELECT format('%I can create databases', rolname) FROM roles WHERE rolcreatedb
  UNION ALL SELECT format('%I can replicate', rolname) FROM roles WHERE rolreplication
  UNION ALL SELECT format('%I bypasses row-level security', rolname) FROM roles WHERE rolbypassrls
  UNION ALL SELECT format('is a member of %I', rolname) FROM roles
    WHERE rolname IN ('pg_write_all_data', 'pg_write_server_files', 'pg_execute_server_program', 'pg_maintain', 'pg_create_subscription')
  UNION ALL SELECT format('%I can create schemas in database %I', rolname, current_database()) FROM roles
    WHERE has_database_privilege(oid, current_database(), 'CREATE')
  UNION ALL SELECT format('%I can create objects in schema %I', r.rolname, n.nspname) FROM roles r, pg_namespace n
    WHERE n.nspname !~ '^pg_(toast_)?temp_' AND has_schema_privilege(r.oid, n.oid, 'CREATE')
  UNION ALL SELECT format('%I can change %I.%I', r.rolname, c.nspname, c.relname) FROM roles r, relations c, table_writes w
    WHERE c.relkind <> 'S' AND (has_table_privilege(r.oid, c.oid, w.privileges) OR has_any_column_privilege(r.oid, c.oid, 'INSERT, UPDATE, REFERENCES'))
  UNION ALL SELECT format('%I can advance sequence %I.%I', r.rolname, c.nspname, c.relname) FROM roles r, relations c
    WHERE c.relkind = 'S' AND has_sequence_privilege(r.oid, c.oid, 'USAGE, UPDATE')
) AS p(problem)
LIMIT ${MAX_PROBLEMS_REPORTED}`;

/**
 * Defense in depth: the read credential must not be able to write its way around twokey (the target
 * enforces what the agent decides). A role that can do anything but read, itself or through a role
 * it belongs to, is refused at start-up with the reasons.
 */
export async function checkReadCredential(config: TargetConfig): Promise<void> {
  const target = asPostgresTarget(config);
  const rows = await querySimple(
    {
      host: target.upstream.host,
      port: target.upstream.port,
      user: target.readCredential.user,
      password: passwordOf(target.readCredential),
      database: pinnedDatabase(target),
    },
    READ_ROLE_PROBLEMS_SQL,
  );
  if (rows.length === 0) return;
  const problems = rows.map((r) => r[0] ?? '').join('; ');
  throw new ReadCredentialError(`target ${target.name}: the read credential ${target.readCredential.user} can do more than read (${problems}); give it a role that can only SELECT`);
}
