import { ProtocolReadError, readBindStatementName, readCommandTag, RecentCstring } from '../../../agent/postgres/protocol/reader';

/** A message: code, length, body. */
function message(code: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(code, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}
const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8');
/** Bind: portal, statement, no parameter formats, no parameters, no result formats. */
const bind = (portal: string, statement: string) => message('B', Buffer.concat([cstr(portal), cstr(statement), Buffer.from([0, 0, 0, 0, 0, 0])]));

describe('hot-path readers (recorded sessions)', () => {
  it("reads a Bind's statement name after an unnamed or a named portal, inside a larger buffer", () => {
    const recent = new RecentCstring();
    for (const [portal, statement] of [['', 'P_0'], ['portal one', 'stmt é'], ['', '']] as const) {
      const m = bind(portal, statement);
      const buf = Buffer.concat([Buffer.from('xyz'), m, Buffer.from('tail\0')]);
      expect(readBindStatementName(buf, 3, 3 + m.length, recent)).toBe(statement);
    }
  });

  it("reads a CommandComplete's tag, and repeats of the same bytes give the same string", () => {
    const recent = new RecentCstring();
    const first = readCommandTag(message('C', cstr('SELECT 1')), 0, 14, recent);
    expect(first).toBe('SELECT 1');
    expect(readCommandTag(message('C', cstr('SELECT 1')), 0, 14, recent)).toBe(first);
    expect(readCommandTag(message('C', cstr('UPDATE 12')), 0, 15, recent)).toBe('UPDATE 12');
  });

  it('refuses strings not terminated within the message, even when a NUL follows it in the buffer', () => {
    const recent = new RecentCstring();
    const tag = message('C', Buffer.from('SELECT 1', 'utf8'));
    expect(() => readCommandTag(Buffer.concat([tag, Buffer.from([0])]), 0, tag.length, recent)).toThrow(ProtocolReadError);
    const portalOnly = message('B', cstr(''));
    expect(() => readBindStatementName(Buffer.concat([portalOnly, cstr('next')]), 0, portalOnly.length, recent)).toThrow(ProtocolReadError);
  });
});
