import pg from 'pg';
import { DEMO_CUSTOMERS, demoCustomer } from '../../../local/demo/seed';
import { twokey } from '../../support/cli';
import { waitFor } from '../../support/control-plane';
import { createSsnReaders, psqlAs } from '../../support/masked-psql';
import { startPgStack, type PgStack } from '../../support/pg-stack';

const POLICY = `
targets:
  - { name: test-pg, protocol: postgres, agent: pg-agent }
reviewers: { dba: [{ subject: bob, email: bob@example.com }] }
rules:
  - name: support
    targets: [test-pg]
    subjects: { groups: [support] }
    actions: { read: allow, write: { approve: { groups: [dba] } }, ddl: deny, admin: deny, unknown: deny }
  - name: analysts
    targets: [test-pg]
    subjects: { groups: [analyst, bi] }
    actions: { read: allow, write: deny, ddl: deny, admin: deny, unknown: deny }
masks:
  - name: pii-support
    targets: [test-pg]
    subjects: { groups: [support] }
    columns: [public.customers.email, public.customers.ssn, public.customers.card_number]
    style: partial
  - name: pii-analyst
    targets: [test-pg]
    subjects: { groups: [analyst] }
    columns: [public.customers.email, public.customers.ssn, public.customers.card_number]
    style: full
    strict: true
  - name: pii-bi
    targets: [test-pg]
    subjects: { groups: [bi] }
    columns: [public.customers.email]
    style: hash
`;

/** Every raw email, SSN and card number of the demo data. */
const RAW: readonly string[] = Array.from({ length: DEMO_CUSTOMERS }, (_, i) => demoCustomer(i + 1)).flatMap((c) => [c.email, c.ssn, c.cardNumber]);

function leaks(text: string): string[] {
  return RAW.filter((v) => text.includes(v) || text.includes(v.toUpperCase()));
}

describe('masking through the Postgres agent', () => {
  let stack: PgStack;

  beforeAll(async () => {
    stack = await startPgStack({
      policy: POLICY,
      // A SQL function that reads a masked column, and a view that shows it through the function.
      prepare: createSsnReaders,
    });
  }, 120_000);
  afterAll(() => stack?.stop());

  const psql = (user: string, groups: string[], ...commands: string[]) => psqlAs(stack, user, groups, ...commands);
  const dave = (...commands: string[]) => psql('dave', ['analyst'], ...commands);
  const alice = (...commands: string[]) => psql('alice', ['support'], ...commands);

  it('masks source columns for dave across SELECT *, aliases, joins and views', async () => {
    const out = await dave(
      'SELECT * FROM customers',
      'SELECT email AS e, ssn AS s, card_number AS c FROM customers',
      'SELECT o.id, c.email, c.card_number FROM orders o JOIN customers c ON c.id = o.customer_id',
      'SELECT * FROM customer_contacts',
      'SELECT x.* FROM (SELECT id FROM customers) x',
    );
    expect(out.stderr).toBe('');
    expect(leaks(out.stdout)).toEqual([]);
    expect(out.stdout).toContain('1|Ben Ahmed|****|****|****|');
    expect(out.stdout).toContain('(1000 rows)');
    expect(out.stdout).toContain('(5000 rows)');
  });

  it('refuses in strict mode what would infer a masked value, naming the column', async () => {
    const attempts: [string, RegExp][] = [
      ["SELECT id FROM customers WHERE ssn LIKE '1%'", /column public\.customers\.ssn is masked \(strict\) and cannot be used in WHERE/],
      ['SELECT id FROM customers ORDER BY card_number', /public\.customers\.card_number .* ORDER BY/],
      ['SELECT substring(ssn, 1, 3) FROM customers', /public\.customers\.ssn .* not in an expression/],
      ['SELECT length(email) FROM customers', /public\.customers\.email .* not in an expression/],
      ['SELECT upper(email) FROM customers', /public\.customers\.email/],
      ["SELECT email || '' FROM customers", /public\.customers\.email/],
      ['SELECT count(*) FROM customers GROUP BY ssn', /GROUP BY/],
      ['SELECT c.id FROM customers c JOIN customers d ON c.email = d.email', /JOIN ON/],
      ['WITH x AS (SELECT ssn AS s FROM customers) SELECT s FROM x', /WITH query x/],
      ['SELECT id FROM customer_contacts WHERE email = $$a$$', /WHERE/],
      ['SELECT c FROM customers c', /not in an expression/],
      ['COPY customers TO STDOUT', /COPY/],
      ['SELECT s FROM customer_ssns', /public\.customers\.ssn .* not in an expression/],
      ['SELECT email::varchar FROM customers', /expression/],
      ['SELECT CASE WHEN ssn > $$5$$ THEN 1 END FROM customers', /expression/],
    ];
    for (const [sql, message] of attempts) {
      const out = await dave(sql);
      expect(`${sql} -> ${out.stderr}`).toMatch(message);
      expect(out.stdout).toBe('');
    }
  });

  it('keeps values out of errors and notices', async () => {
    const { email, ssn } = demoCustomer(7);
    const out = await dave(`SELECT * FROM customers WHERE id = '${email}'`, `SELECT '${ssn}'::int`);
    expect(out.stderr).toMatch(/invalid input syntax for type integer: "\*\*\*\*"/);
    // psql itself prints the statement it sent after "LINE 1:" (from its own copy, not from the server).
    const fromServer = out.stderr.split('\n').filter((l) => !/^LINE \d+:|^\s+\^/.test(l)).join('\n');
    expect(leaks(fromServer + out.stdout)).toEqual([]);
  });

  it('masks binary-format results from node-postgres', async () => {
    const { host, port } = stack.endpoint('test-pg');
    const client = new pg.Client({ host, port, user: 'dave', database: 'demo', password: await stack.token('dave', ['analyst']) });
    await client.connect();
    try {
      // With parameters node-postgres uses the extended protocol, where `binary` asks for binary results.
      // `binary` is a node-postgres query option its type definitions leave out.
      const query = { text: 'SELECT id, name, email, ssn, card_number, created_at FROM customers WHERE id <= $1 ORDER BY id', values: [3], binary: true };
      const r = await client.query(query as pg.QueryConfig<number[]>);
      expect(r.fields.map((f) => f.format)).toEqual(Array(6).fill('binary'));
      expect(r.rows[0]).toMatchObject({ id: 1, name: 'Ben Ahmed', email: '****', ssn: '****', card_number: '****' });
      expect(r.rows[0].created_at).toBeInstanceOf(Date);
      expect(leaks(JSON.stringify(r.rows))).toEqual([]);
    } finally {
      await client.end();
    }
  });

  it('masks partially for alice, through expressions (detectors), COPY and views', async () => {
    const c = demoCustomer(1);
    const out = await alice(
      'SELECT email, ssn, card_number FROM customers WHERE id = 1',
      'SELECT upper(email), ssn || $$ $$, card_number || $$$$ FROM customers',
      'COPY customers TO STDOUT',
      'COPY customers (id, email) TO STDOUT WITH (FORMAT csv, HEADER)',
      'SELECT * FROM customer_contacts',
      'SELECT row_to_json(c) FROM customers c',
      'SELECT * FROM customer_ssns WHERE id <= 3',
    );
    expect(out.stderr).toBe('');
    expect(leaks(out.stdout)).toEqual([]);
    expect(out.stdout).toContain(`****${c.email.slice(-4)}|****${c.ssn.slice(-4)}|****${c.cardNumber.slice(-4)}`);
    expect(out.stdout).toContain(`1\tBen Ahmed\t****${c.email.slice(-4)}\t****${c.ssn.slice(-4)}`);
    expect(out.stdout).toContain(`id,email\n1,****${c.email.slice(-4)}`);
  });

  it('reads the catalog again for a view created after it was loaded', async () => {
    await dave('SELECT 1');
    const admin = new pg.Client({ connectionString: stack.pg.adminUrl });
    await admin.connect();
    await admin.query('CREATE VIEW late_contacts AS SELECT id, email AS address FROM customers');
    await admin.end();
    const out = await dave('SELECT address FROM late_contacts WHERE id = 1', 'SELECT id FROM late_contacts WHERE address LIKE $$a%$$');
    expect(out.stdout).toContain('address\n****\n(1 row)');
    expect(out.stderr).toMatch(/public\.customers\.email is masked \(strict\) and cannot be used in WHERE/);
  });

  it('masks with a keyed hash that still joins, and hashes values computed from the column', async () => {
    const out = await psql('gus', ['bi'], 'SELECT a.email, b.email FROM customers a JOIN customers b USING (id) WHERE a.id = 3');
    const [first, second] = (out.stdout.split('\n')[1] ?? '').split('|');
    expect(first).toMatch(/^hmac:[0-9a-f]{16}$/);
    expect(second).toBe(first);
    expect(leaks(out.stdout)).toEqual([]);
    // A value computed from the column is hashed too (over the computed value), not shown.
    const derived = await psql('gus', ['bi'], "SELECT upper(email) AS u, split_part(email, '@', 1) AS p FROM customers WHERE id = 3");
    const [u, p] = (derived.stdout.split('\n')[1] ?? '').split('|');
    expect(u).toMatch(/^hmac:[0-9a-f]{16}$/);
    expect(p).toMatch(/^hmac:[0-9a-f]{16}$/);
    expect(new Set([first, u, p]).size).toBe(3);
  });

  it('records what dave saw: masked', async () => {
    await dave('SELECT * FROM customers ORDER BY id LIMIT 20', `SELECT '${demoCustomer(3).ssn}'::int`);
    await waitFor(() => (stack.agent.context.recording.pending().sessions === 0 ? true : undefined), 20_000, 'recording shipped');
    const erin = await stack.apiToken('erin', ['auditor']);
    const cli = (args: string[]) => twokey([...args, '--url', stack.cp.httpUrl], { TWOKEY_TOKEN: erin });
    const list = await cli(['sessions', 'list', '--user', 'dave', '--json']);
    // Newest first: the psql run just above (dave's earlier sessions would each cost a replay process).
    const sessions = (JSON.parse(list.stdout) as { sessions: { sessionId: string }[] }).sessions;
    const replays = (await cli(['replay', sessions[0]?.sessionId ?? ''])).stdout;
    expect(replays).toContain('SELECT * FROM customers ORDER BY id LIMIT 20');
    expect(replays).toContain('Ben Ahmed');
    expect(replays).toContain('****');
    expect(leaks(replays)).toEqual([]);
  });
});
