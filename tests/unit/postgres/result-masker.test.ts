import { loadModule } from 'libpg-query';
import { MaskingProfile } from '../../../core/masking/profile';
import { jsonLogger } from '../../../core/log';
import { PgCatalog } from '../../../agent/postgres/masking/catalog';
import { ResultMasker } from '../../../agent/postgres/masking/result-masker';
import { BACKEND } from '../../../agent/postgres/protocol/codes';
import { cstring, errorResponse, int32, message, queryMessage } from '../../../agent/postgres/protocol/writer';

const CUSTOMERS_OID = 16400;
/** The catalog's query answered as PostgreSQL would for one table (no views, no functions). */
const catalogRows = async (sql: string): Promise<(string | null)[][]> =>
  sql.includes('pg_proc')
    ? []
    : [[JSON.stringify({ oid: String(CUSTOMERS_OID), schema: 'public', name: 'customers', kind: 'r', columns: [[1, 'id'], [2, 'ssn']], view: null })]];

function rowDescription(fields: { name: string; tableOid: number; attnum: number }[]): Buffer {
  const int16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const parts = fields.map((f) => Buffer.concat([cstring(f.name), int32(f.tableOid), int16(f.attnum), int32(25), int16(-1 & 0xffff), int32(-1), int16(0)]));
  return message(BACKEND.RowDescription, Buffer.concat([int16(fields.length), ...parts]));
}

function dataRow(values: string[]): Buffer {
  return message(BACKEND.DataRow, Buffer.concat([Buffer.from([0, values.length]), ...values.map((v) => Buffer.concat([int32(Buffer.byteLength(v)), Buffer.from(v)]))]));
}

/** What the client would receive for one server message. */
function through(masker: ResultMasker, msg: Buffer): Buffer {
  const outcome = masker.handle(msg, 0, msg.length, msg[0] as number, true);
  if (outcome.kind === 'written') return outcome.bytes;
  if (outcome.kind === 'pass') return msg;
  throw new Error(`unexpected ${outcome.kind}`);
}

describe('result masking by lineage', () => {
  let masker: ResultMasker;

  beforeAll(() => loadModule());

  beforeEach(async () => {
    const catalog = new PgCatalog(catalogRows, jsonLogger('test', 'error'));
    await catalog.refresh();
    const profile = new MaskingProfile([{ name: 'pii', targets: ['t'], subjects: { users: [], groups: ['g'] }, columns: ['public.customers.ssn'], style: 'partial', strict: false }], undefined);
    masker = new ResultMasker(profile, catalog);
  });

  it('masks in full what a write RETURNs computed from a masked column, and a plain one in its style', () => {
    const query = queryMessage("UPDATE customers SET id = id WHERE id = 1 RETURNING ssn, reverse(ssn)");
    masker.expectClient(query[0] as number, query, 0, query.length);
    // RETURNING columns come without a table OID.
    through(masker, rowDescription([{ name: 'ssn', tableOid: 0, attnum: 0 }, { name: 'reverse', tableOid: 0, attnum: 0 }]));
    const row = through(masker, dataRow(['123-45-6789', '9876-54-321']));
    expect(row.toString('latin1')).toContain('****6789');
    expect(row.toString('latin1')).not.toContain('9876');
  });

  it('hides the text of an error about a statement that reads a masked column, keeping its SQLSTATE', () => {
    const query = queryMessage('SELECT reverse(ssn)::int FROM customers');
    masker.expectClient(query[0] as number, query, 0, query.length);
    const error = through(masker, errorResponse({ severity: 'ERROR', code: '22P02', message: 'invalid input syntax for type integer: "9876-54-321"' }));
    expect(error.toString('latin1')).toContain('22P02');
    expect(error.toString('latin1')).not.toContain('9876');
  });
});
