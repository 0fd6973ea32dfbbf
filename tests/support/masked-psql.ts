import { execFile } from 'node:child_process';
import type pg from 'pg';
import type { PgStack } from './pg-stack';

/** A SQL function that reads a masked column (customers.ssn), and a view that shows it through the function. */
export async function createSsnReaders(admin: pg.Client): Promise<void> {
  await admin.query(`CREATE FUNCTION ssn_of(i int) RETURNS text LANGUAGE sql STABLE AS 'SELECT ssn FROM customers WHERE id = i'`);
  await admin.query('CREATE VIEW customer_ssns AS SELECT id, ssn_of(id) AS s FROM customers');
}

/**
 * psql through the stack's `test-pg` endpoint as `user` in `groups`, one `-c` per command in one
 * session; its whole output, decoded byte for byte (latin1) so that a leak check sees every byte.
 */
export async function psqlAs(stack: PgStack, user: string, groups: string[], ...commands: string[]): Promise<{ stdout: string; stderr: string }> {
  const { host, port } = stack.endpoint('test-pg');
  const token = await stack.token(user, groups);
  return new Promise((resolve) =>
    execFile(
      'psql',
      [`host=${host} port=${port} dbname=demo user=${user}`, '-X', '-A', ...commands.flatMap((c) => ['-c', c])],
      { env: { ...process.env, PGPASSWORD: token }, encoding: 'latin1', maxBuffer: 64 * 1024 * 1024 },
      (_e, stdout, stderr) => resolve({ stdout: String(stdout), stderr: String(stderr) }),
    ),
  );
}
