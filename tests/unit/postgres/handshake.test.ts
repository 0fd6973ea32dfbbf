import { SQLSTATE, STARTUP } from '../../../agent/postgres/protocol/codes';
import { cstring, int32, message, startupMessage } from '../../../agent/postgres/protocol/writer';
import { MAX_PASSWORD_MESSAGE_BYTES, StartupHandshake, type StartupAction, type StartupConnection } from '../../../agent/postgres/startup/handshake';

const LOCAL: StartupConnection = { tls: false, tlsAvailable: false, loopback: true };
const passwordMessage = (token: string): Buffer => message(0x70, cstring(token));
const request = (code: number): Buffer => Buffer.concat([int32(8), int32(code)]);

/** The actions for a byte stream delivered in the given chunks, each reply shown as its first byte. */
function run(chunks: Buffer[], connection: StartupConnection = LOCAL): string[] {
  const handshake = new StartupHandshake();
  return chunks.flatMap((c) => handshake.push(c, connection)).map(shown);
}

function shown(a: StartupAction): string {
  switch (a.kind) {
    case 'reply':
      return `reply ${String.fromCharCode(a.bytes[0] as number)}`;
    case 'verify':
      return `verify ${a.token}`;
    case 'cancel':
      return `cancel ${a.pid}/${a.secret}`;
    case 'fatal':
      return `fatal ${a.code} ${a.message}`;
    default:
      return a.kind;
  }
}

describe('Postgres start-up handshake (I/O-free)', () => {
  const stream = Buffer.concat([request(STARTUP.GSSENCRequest), startupMessage({ user: 'alice', database: 'demo' }), passwordMessage('header.payload.sig')]);
  const expected = ['reply N', 'reply R', 'verify header.payload.sig'];

  it('asks for the password after the start-up message and hands the token over to verify', () => {
    expect(run([stream])).toEqual(expected);
  });

  it('gives the same actions at every split point and one byte at a time', () => {
    for (let i = 1; i < stream.length; i++) expect(run([stream.subarray(0, i), stream.subarray(i)])).toEqual(expected);
    expect(run([...stream].map((b) => Buffer.from([b])))).toEqual(expected);
  });

  it('keeps the start-up parameters once the password is asked for', () => {
    const handshake = new StartupHandshake();
    handshake.push(startupMessage({ user: 'alice', database: 'demo', application_name: 'psql' }), LOCAL);
    expect(handshake.params).toEqual({ user: 'alice', database: 'demo', application_name: 'psql' });
  });

  it('answers an SSLRequest with S and starts TLS when the target has a certificate, N otherwise', () => {
    expect(run([request(STARTUP.SSLRequest)], { ...LOCAL, tlsAvailable: true })).toEqual(['reply S', 'start-tls']);
    expect(run([request(STARTUP.SSLRequest)])).toEqual(['reply N']);
  });

  it('refuses bytes sent after an SSLRequest before the answer (they would bypass TLS)', () => {
    expect(run([Buffer.concat([request(STARTUP.SSLRequest), startupMessage({ user: 'alice' })])], { ...LOCAL, tlsAvailable: true })).toEqual([
      `fatal ${SQLSTATE.protocolViolation} twokey: data after SSLRequest`,
    ]);
  });

  it('refuses a caller on another host that did not start TLS, before it sends its token', () => {
    expect(run([startupMessage({ user: 'alice' }), passwordMessage('t')], { tls: false, tlsAvailable: true, loopback: false })).toEqual([
      `fatal ${SQLSTATE.invalidAuthorizationSpecification} twokey: connections from other hosts must use TLS; connect with sslmode=require`,
    ]);
    expect(run([startupMessage({ user: 'alice' })], { tls: true, tlsAvailable: true, loopback: false })).toEqual(['reply R']);
  });

  it('forwards a CancelRequest with its key', () => {
    expect(run([Buffer.concat([int32(16), int32(STARTUP.CancelRequest), int32(42), int32(7)])])).toEqual(['cancel 42/7']);
  });

  it('declines a newer protocol minor and _pq_ options, and refuses replication and other protocols', () => {
    const newer = Buffer.concat([int32(4 + 4 + 5 + 6 + 1), int32(STARTUP.ProtocolV3 + 2), cstring('user'), cstring('alice'), Buffer.from([0])]);
    expect(run([newer])).toEqual(['reply v', 'reply R']);
    expect(run([startupMessage({ user: 'alice', replication: 'database' })])).toEqual([`fatal ${SQLSTATE.featureNotSupported} twokey: replication connections are not supported`]);
    expect(run([Buffer.concat([int32(8), int32(2 << 16)])])).toEqual([`fatal ${SQLSTATE.featureNotSupported} twokey: unsupported protocol 2.0`]);
  });

  it('refuses anything but a password message, a password over its cap, and messages after the password', () => {
    const start = startupMessage({ user: 'alice' });
    expect(run([start, message(0x51, cstring('SELECT 1'))])).toEqual(['reply R', `fatal ${SQLSTATE.protocolViolation} twokey: expected a password message`]);
    const huge = Buffer.concat([Buffer.from('p'), int32(MAX_PASSWORD_MESSAGE_BYTES + 10)]);
    expect(run([start, huge])).toEqual(['reply R', `fatal ${SQLSTATE.programLimitExceeded} twokey: message of ${MAX_PASSWORD_MESSAGE_BYTES + 11} bytes exceeds the limit of ${MAX_PASSWORD_MESSAGE_BYTES} bytes`]);
    expect(run([start, passwordMessage('a.b.c'), message(0x51, cstring('SELECT 1'))])).toEqual(['reply R', 'verify a.b.c', `fatal ${SQLSTATE.protocolViolation} twokey: message before start-up finished`]);
  });

  it('refuses a malformed start-up packet as a protocol violation', () => {
    expect(run([Buffer.concat([int32(9), int32(STARTUP.ProtocolV3), Buffer.from('u')])])[0]).toMatch(new RegExp(`^fatal ${SQLSTATE.protocolViolation} twokey: invalid`));
  });
});
