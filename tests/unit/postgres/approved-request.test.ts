import { approvalHash, approvedMessages, HELD_BATCH_RULE, heldExtendedStatement, simpleStatement, type ApprovedStatement } from '../../../agent/postgres/approval/approved-request';
import { FRONTEND } from '../../../agent/postgres/protocol/codes';
import { MessageFramer } from '../../../agent/postgres/protocol/framer';
import { bodyOf, ProtocolReadError, readBind, readParse } from '../../../agent/postgres/protocol/reader';
import { message } from '../../../agent/postgres/protocol/writer';
import { wire } from '../../support/pg-wire';

const UPDATE = 'UPDATE customers SET name = $1 WHERE id = $2';
const parse = wire.parse('', UPDATE);
const bind = wire.bindWith('', '', ['Ada', '1']);
const describePortal = wire.describePortal('');
const execute = wire.execute('');
const sync = wire.sync();

/** The messages of a buffer, one per element, header included. */
function split(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  new MessageFramer(bytes.length + 1).push(bytes, (buf, start, end) => void out.push(Buffer.from(buf.subarray(start, end))));
  return out;
}

const codes = (bytes: Buffer): string => split(bytes).map((m) => String.fromCharCode(m[0] as number)).join('');

describe('a held extended-protocol batch', () => {
  it.each([
    ['Parse, Bind, Describe, Execute, Sync (node-postgres, libpq)', [parse, bind, describePortal, execute, sync], true],
    ['Parse, Bind, Execute, Sync', [parse, bind, execute, sync], false],
  ])('accepts %s as one statement with its text parameters', (_name, messages, described) => {
    const held = heldExtendedStatement(messages);
    expect(held).toEqual({ ok: true, statement: { protocol: 'extended', text: UPDATE, params: ['Ada', '1'], resultFormats: [], describe: described } });
  });

  it('keeps SQL NULL apart from the text "null"', () => {
    const held = heldExtendedStatement([parse, wire.bindWith('', '', [null, 'null']), execute, sync]);
    expect(held.ok && held.statement.protocol === 'extended' && held.statement.params).toEqual([null, 'null']);
  });

  it.each([
    ['a second Bind and Execute', [parse, bind, execute, wire.bindWith('', '', ['pwned', '2']), execute, sync]],
    ['a second Execute', [parse, bind, execute, execute, sync]],
    ['a Query riding along', [parse, bind, execute, wire.query('DELETE FROM customers')]],
    ['a FunctionCall riding along', [parse, bind, execute, wire.functionCall()]],
    ['a second Parse', [parse, bind, execute, wire.parse('', 'DELETE FROM customers'), sync]],
    ['a Close', [parse, bind, execute, wire.closeStatement('s1'), sync]],
    ['a Flush', [parse, bind, execute, wire.flush()]],
    ['no Bind (a statement prepared for later)', [parse, sync]],
    ['no Execute', [parse, bind, describePortal, sync]],
    ['a Describe of the statement', [parse, wire.describeStatement(''), bind, execute, sync]],
    ['a Describe of another portal', [parse, bind, wire.describePortal('p1'), execute, sync]],
    ['a Bind to a named portal', [parse, wire.bindWith('p1', '', ['Ada', '1']), wire.execute('p1'), sync]],
    ['a Bind of a named statement', [parse, wire.bindWith('', 's1', ['Ada', '1']), execute, sync]],
    ['an Execute of another portal', [parse, bind, wire.execute('p1'), sync]],
    ['an Execute with a row limit', [parse, bind, wire.execute('', 1), sync]],
  ])('refuses a batch with %s, naming the rule', (_name, messages) => {
    const held = heldExtendedStatement(messages);
    expect(held.ok).toBe(false);
    if (!held.ok) expect(held.refusal).toMatchObject({ code: '0A000', message: HELD_BATCH_RULE });
  });

  it('refuses a statement prepared under a name (pgbench -M prepared), saying to use the unnamed one', () => {
    const held = heldExtendedStatement([wire.parse('P0_1', UPDATE), wire.bindWith('', 'P0_1', ['Ada', '1']), execute, sync]);
    expect(!held.ok && held.refusal.message).toMatch(/cannot be prepared under a name/);
  });

  it('refuses binary parameters, which a reviewer cannot read', () => {
    const held = heldExtendedStatement([parse, wire.bindWith('', '', [Buffer.from([0, 0, 0, 2]), 'x'], { paramFormats: [1] }), execute, sync]);
    expect(!held.ok && held.refusal.message).toMatch(/parameters as text/);
  });

  it('keeps the result formats the caller asked for, and refuses unknown format codes', () => {
    const binary = heldExtendedStatement([parse, wire.bindWith('', '', ['Ada', '1'], { resultFormats: [1] }), describePortal, execute, sync]);
    expect(binary.ok && binary.statement.protocol === 'extended' && binary.statement.resultFormats).toEqual([1]);
    const odd = heldExtendedStatement([parse, wire.bindWith('', '', ['Ada', '1'], { resultFormats: [7] }), execute, sync]);
    expect(odd.ok).toBe(false);
  });

  it('treats trailing bytes in a message as a malformed message', () => {
    const padded = Buffer.concat([bind.subarray(0, 1), Buffer.alloc(4), bind.subarray(5), Buffer.from([9])]);
    padded.writeInt32BE(padded.length - 1, 1);
    expect(() => heldExtendedStatement([parse, padded, execute, sync])).toThrow(ProtocolReadError);
    expect(() => heldExtendedStatement([parse, message(FRONTEND.Bind, Buffer.from([0])), execute, sync])).toThrow(ProtocolReadError);
  });
});

describe('the messages built for the write connection', () => {
  it('builds one Query from the text of a simple statement', () => {
    const bytes = approvedMessages(simpleStatement("UPDATE t SET a = 'x'"));
    expect(codes(bytes)).toBe('Q');
    expect(bodyOf(bytes, 0, bytes.length).cstring()).toBe("UPDATE t SET a = 'x'");
  });

  it('builds an unnamed Parse without declared types, an unnamed Bind of the text values, Execute of all rows and Sync', () => {
    const held = heldExtendedStatement([wire.parse('', UPDATE, [25, 23]), wire.bindWith('', '', ['Ada', null], { resultFormats: [1] }), describePortal, execute, sync]);
    if (!held.ok) throw new Error('refused');
    const messages = split(approvedMessages(held.statement));
    expect(messages.map((m) => String.fromCharCode(m[0] as number)).join('')).toBe('PBDES');
    const [p, b] = messages as [Buffer, Buffer];
    expect(readParse(bodyOf(p, 0, p.length))).toEqual({ name: '', query: UPDATE, paramTypes: [] });
    expect(readBind(bodyOf(b, 0, b.length))).toEqual({ portal: '', statement: '', paramFormats: [], params: [Buffer.from('Ada'), null], resultFormats: [1] });
  });

  it('builds no Describe when the caller sent none', () => {
    const held = heldExtendedStatement([parse, bind, execute, sync]);
    if (!held.ok) throw new Error('refused');
    expect(codes(approvedMessages(held.statement))).toBe('PBES');
  });
});

describe('the approval hash', () => {
  const extended = (params: (string | null)[]): ApprovedStatement => ({ protocol: 'extended', text: UPDATE, params, resultFormats: [], describe: true });

  it('differs for different parameters, NULL against text, the protocol and the kind', () => {
    const hashes = [
      approvalHash('statement', extended(['Ada', '1'])),
      approvalHash('statement', extended(['Ada', '2'])),
      approvalHash('statement', extended(['Ada', null])),
      approvalHash('statement', extended(['Ada', 'null'])),
      approvalHash('statement', extended(['Ada1'])),
      approvalHash('statement', simpleStatement(UPDATE)),
      approvalHash('statement', extended([])),
      approvalHash('script', simpleStatement(UPDATE)),
    ];
    expect(new Set(hashes).size).toBe(hashes.length);
  });

  it('is the same for the same statement whatever the result formats or Describe', () => {
    const asSent: ApprovedStatement = { protocol: 'extended', text: UPDATE, params: ['a'], resultFormats: [1], describe: false };
    expect(approvalHash('statement', asSent)).toBe(approvalHash('statement', extended(['a'])));
  });
});
