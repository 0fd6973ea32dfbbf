import { loadModule, parseSync } from 'libpg-query';
import { analyzeStatement, type RelationShape } from '../../../agent/postgres/masking/lineage';

const customers: RelationShape = { schema: 'public', name: 'customers', columns: ['id', 'name', 'email', 'ssn'] };
const orders: RelationShape = { schema: 'public', name: 'orders', columns: ['id', 'customer_id', 'amount'] };
const contacts: RelationShape = {
  schema: 'public',
  name: 'contacts',
  columns: ['id', 'mail'],
  view: { outputs: [{ name: 'id', sources: new Set(['public.customers.id']), plain: true }, { name: 'mail', sources: new Set(['public.customers.email']), plain: true }], uses: new Map(), exact: true },
};
const lookup = (schema: string | undefined, name: string): RelationShape[] => [customers, orders, contacts].filter((r) => r.name === name && (!schema || r.schema === schema));

function lineage(sql: string) {
  const stmt = (parseSync(sql) as { stmts: { stmt: Record<string, unknown> }[] }).stmts[0]?.stmt ?? {};
  const l = analyzeStatement(stmt, lookup);
  return { outputs: l.outputs.map((o) => ({ name: o.name, sources: [...o.sources].sort(), plain: o.plain })), uses: Object.fromEntries(l.uses), exact: l.exact };
}

beforeAll(() => loadModule());

describe('column lineage', () => {
  it('follows aliases, stars and joins to source columns', () => {
    expect(lineage('SELECT c.email AS e, o.* FROM customers c JOIN orders o ON o.customer_id = c.id').outputs).toEqual([
      { name: 'e', sources: ['public.customers.email'], plain: true },
      { name: 'id', sources: ['public.orders.id'], plain: true },
      { name: 'customer_id', sources: ['public.orders.customer_id'], plain: true },
      { name: 'amount', sources: ['public.orders.amount'], plain: true },
    ]);
  });

  it('records uses in WHERE, JOIN ON, ORDER BY positions and names, and USING', () => {
    expect(lineage('SELECT email AS e FROM customers c JOIN orders USING (id) WHERE ssn > $$1$$ ORDER BY e').uses).toEqual({
      'public.customers.id': 'JOIN USING',
      'public.orders.id': 'JOIN USING',
      'public.customers.ssn': 'WHERE',
      'public.customers.email': 'ORDER BY',
    });
    expect(lineage('SELECT name, ssn FROM customers ORDER BY 2').uses).toEqual({ 'public.customers.ssn': 'ORDER BY' });
  });

  it('sees through subqueries, CTEs with renamed columns, views and correlated references', () => {
    expect(lineage('SELECT s FROM (SELECT ssn FROM customers) AS x(s)').outputs[0]).toEqual({ name: 's', sources: ['public.customers.ssn'], plain: true });
    expect(lineage('WITH w(m) AS (SELECT email FROM customers) SELECT upper(m) FROM w').outputs[0]).toEqual({ name: undefined, sources: ['public.customers.email'], plain: false });
    expect(lineage('SELECT mail FROM contacts').outputs[0]?.sources).toEqual(['public.customers.email']);
    expect(lineage('SELECT id FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id AND c.ssn = $$x$$)').uses).toMatchObject({
      'public.customers.ssn': 'WHERE',
      'public.orders.customer_id': 'WHERE',
    });
  });

  it('treats a whole-row reference and set operations that compare values as non-plain', () => {
    expect(lineage('SELECT c FROM customers c').outputs[0]).toMatchObject({ plain: false, sources: ['public.customers.email', 'public.customers.id', 'public.customers.name', 'public.customers.ssn'] });
    expect(lineage('SELECT email FROM customers INTERSECT SELECT $$a@b.c$$').uses).toEqual({ 'public.customers.email': 'INTERSECT' });
  });

  it('counts an unresolvable name as every same-named column the statement can see', () => {
    expect(lineage('SELECT f.ssn FROM customers, generate_series(1, 2) f').outputs[0]?.sources).toEqual(['public.customers.ssn']);
  });

  it('carries what a function in FROM reads into its columns, and marks a * over it as inexact', () => {
    expect(lineage('SELECT u FROM customers c, unnest(ARRAY[c.ssn]) u').outputs[0]).toEqual({ name: 'u', sources: ['public.customers.ssn'], plain: false });
    expect(lineage('SELECT x.v FROM customers c, unnest(ARRAY[c.email]) AS x(v)').outputs[0]?.sources).toEqual(['public.customers.email']);
    const star = lineage('SELECT * FROM unnest(ARRAY(SELECT ssn FROM customers))');
    expect(star.exact).toBe(false);
    expect(star.outputs[0]?.sources).toEqual(['public.customers.ssn']);
    expect(lineage('SELECT c.* FROM customers c').exact).toBe(true);
  });

  it('lets a recursive CTE step move any of its values to any of its columns', () => {
    const out = lineage("WITH RECURSIVE r(n, a, b) AS (SELECT 1, '', ssn FROM customers UNION ALL SELECT n + 1, b, '' FROM r WHERE n < 2) SELECT a FROM r").outputs[0];
    expect(out).toEqual({ name: 'a', sources: ['public.customers.ssn'], plain: false });
  });

  it('gives RETURNING lists of writes their lineage', () => {
    const l = lineage("UPDATE customers SET name = 'x' WHERE id = 1 RETURNING id, ssn, reverse(email)");
    expect(l.exact).toBe(true);
    expect(l.outputs).toEqual([
      { name: 'id', sources: ['public.customers.id'], plain: true },
      { name: 'ssn', sources: ['public.customers.ssn'], plain: true },
      { name: undefined, sources: ['public.customers.email'], plain: false },
    ]);
  });

  it('counts the planner statistics, and relations the catalog does not know, as showing unknown columns', () => {
    expect(lineage('SELECT histogram_bounds FROM pg_stats').outputs[0]?.sources).toEqual(['?']);
    expect(lineage('SELECT x FROM made_since_the_catalog_was_read').outputs[0]?.sources).toEqual(['?']);
    expect(lineage('SELECT relname FROM pg_class').outputs[0]?.sources).toEqual([]);
  });
});
