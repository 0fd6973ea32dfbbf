/**
 * The demo database: deterministic customers and orders, so that tests and the README can name
 * exact values. Pure: it only builds SQL text.
 */
export const DEMO_CUSTOMERS = 1000;
export const DEMO_ORDERS = 5000;

const FIRST = ['Ada', 'Ben', 'Chloe', 'Dev', 'Eva', 'Finn', 'Gita', 'Hugo', 'Ines', 'Jon', 'Kira', 'Liam', 'Mona', 'Nils', 'Olga', 'Pia'];
const LAST = ['Ahmed', 'Brown', 'Costa', 'Dubois', 'Eriksen', 'Fischer', 'Garcia', 'Horvat', 'Ivanov', 'Jensen', 'Kowalski', 'Lopez', 'Moreau', 'Novak', 'Okafor', 'Park'];

/** Appends the Luhn check digit (ISO/IEC 7812-1) to a digit string. */
export function withLuhnDigit(digits: string): string {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return `${digits}${(10 - (sum % 10)) % 10}`;
}

export interface DemoCustomer {
  readonly id: number;
  readonly name: string;
  readonly email: string;
  readonly ssn: string;
  readonly cardNumber: string;
  readonly createdAt: string;
}

export function demoCustomer(id: number): DemoCustomer {
  const first = FIRST[id % FIRST.length] ?? 'Ada';
  const last = LAST[Math.floor(id / FIRST.length) % LAST.length] ?? 'Ahmed';
  const area = String(100 + ((id * 7919) % 565)).padStart(3, '0');
  const group = String(10 + ((id * 31) % 89)).padStart(2, '0');
  const serial = String(1000 + ((id * 104729) % 8999)).padStart(4, '0');
  const day = new Date(Date.UTC(2024, 0, 1) + id * 3_600_000 * 7);
  return {
    id,
    name: `${first} ${last}`,
    email: `${first}.${last}${id}@example.com`.toLowerCase(),
    ssn: `${area}-${group}-${serial}`,
    cardNumber: withLuhnDigit(`4${String(100000000000000 + id * 7_777_777).slice(-14)}`),
    createdAt: day.toISOString(),
  };
}

const quote = (s: string): string => `'${s.replace(/'/g, "''")}'`;

export function seedSql(): string[] {
  const statements = [
    `CREATE TABLE customers (
       id integer PRIMARY KEY,
       name text NOT NULL,
       email text NOT NULL UNIQUE,
       ssn text NOT NULL,
       card_number text NOT NULL,
       created_at timestamptz NOT NULL)`,
    `CREATE TABLE orders (
       id integer PRIMARY KEY,
       customer_id integer NOT NULL REFERENCES customers(id),
       amount numeric(10,2) NOT NULL,
       status text NOT NULL,
       created_at timestamptz NOT NULL)`,
  ];
  const rows: string[] = [];
  for (let id = 1; id <= DEMO_CUSTOMERS; id++) {
    const c = demoCustomer(id);
    rows.push(`(${c.id}, ${quote(c.name)}, ${quote(c.email)}, ${quote(c.ssn)}, ${quote(c.cardNumber)}, ${quote(c.createdAt)})`);
  }
  statements.push(`INSERT INTO customers (id, name, email, ssn, card_number, created_at) VALUES ${rows.join(',\n')}`);
  statements.push(
    `INSERT INTO orders (id, customer_id, amount, status, created_at)
     SELECT g, 1 + (g * 37) % ${DEMO_CUSTOMERS}, ((g * 7919) % 100000) / 100.0,
            (ARRAY['new','paid','shipped','refunded'])[1 + g % 4],
            timestamptz '2024-01-01 00:00:00+00' + g * interval '97 minutes'
     FROM generate_series(1, ${DEMO_ORDERS}) AS g`,
  );
  // A view over masked columns: masking follows it to its source columns.
  statements.push(`CREATE VIEW customer_contacts AS SELECT c.id, c.name, c.email FROM customers c`);
  return statements;
}

/** Roles: the read role can only SELECT and starts every transaction read-only; the write role is used for approved work. */
export function rolesSql(database: string, read: { user: string; password: string }, write: { user: string; password: string }): string[] {
  const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;
  return [
    `CREATE ROLE ${ident(read.user)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD ${quote(read.password)}`,
    `ALTER ROLE ${ident(read.user)} SET default_transaction_read_only = on`,
    `GRANT CONNECT ON DATABASE ${ident(database)} TO ${ident(read.user)}`,
    `GRANT USAGE ON SCHEMA public TO ${ident(read.user)}`,
    `GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${ident(read.user)}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO ${ident(read.user)}`,
    `CREATE ROLE ${ident(write.user)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD ${quote(write.password)}`,
    `GRANT CONNECT ON DATABASE ${ident(database)} TO ${ident(write.user)}`,
    `GRANT USAGE ON SCHEMA public TO ${ident(write.user)}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO ${ident(write.user)}`,
    `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${ident(write.user)}`,
  ];
}
