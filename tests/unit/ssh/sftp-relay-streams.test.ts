import { Duplex } from 'node:stream';
import type { ClientChannel, ServerChannel } from 'ssh2';
import { sshString } from '../../../core/ssh/wire';
import { uint32, wirePacket } from '../../support/sftp-bytes';
import { SFTP_STATUS, SFTP_TYPE, statusPacket } from '../../../agent/ssh/sftp/packets';
import { SftpRelay, type SftpRelayDeps } from '../../../agent/ssh/sftp/sftp-relay';

/**
 * One side of the relay as a byte stream: what the test pushes comes out as the peer's bytes, what the
 * relay writes is kept. `reading` false leaves the relay's writes unacknowledged (a peer that does not read) until `startReading`.
 */
function peer(reading = true): { channel: Duplex; written: Buffer[]; startReading(): void } {
  let reads = reading;
  const written: Buffer[] = [];
  const pending: (() => void)[] = [];
  const channel = new Duplex({
    highWaterMark: 64,
    read: () => undefined,
    write(chunk: Buffer, _encoding, done) {
      written.push(chunk);
      if (reads) done();
      else pending.push(done);
    },
  });
  const startReading = (): void => {
    reads = true;
    while (pending.length > 0) pending.shift()?.();
  };
  return { channel, written, startReading };
}

/** The requests these tests send are answered by the relay itself: consulting the policy would be a fault. */
const deps: SftpRelayDeps = {
  judge: new Proxy({} as SftpRelayDeps['judge'], {
    get: (_t, field) => {
      throw new Error(`the relay consulted the judge (${String(field)}) for a request it answers itself`);
    },
  }),
  masking: { active: false } as SftpRelayDeps['masking'],
  writer: () => Promise.reject(new Error('no write login here')),
  reader: () => Promise.reject(new Error('no read login here')),
  fail: (reason) => {
    throw new Error(reason);
  },
};

/** Lets the streams deliver what was pushed (a stream starts flowing, and emits drain, on a later tick). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const fstatUnknown = (id: number): Buffer => wirePacket(SFTP_TYPE.fstat, uint32(id), sshString('not-a-handle'));
const noSuchHandle = (id: number): Buffer => statusPacket(id, SFTP_STATUS.failure, 'twokey: no such handle');

describe('SFTP relay streams', () => {
  it("holds its own reply until the target's reply in progress has ended", async () => {
    const caller = peer();
    const target = peer();
    new SftpRelay(caller.channel as unknown as ServerChannel, target.channel as unknown as ClientChannel, deps);
    const data = wirePacket(SFTP_TYPE.data, uint32(5), sshString(Buffer.alloc(1000, 0x61)));

    target.channel.push(data.subarray(0, 100));
    await settle();
    caller.channel.push(fstatUnknown(6));
    await settle();
    expect(Buffer.concat(caller.written)).toEqual(data.subarray(0, 100));

    target.channel.push(data.subarray(100));
    await settle();
    expect(Buffer.concat(caller.written)).toEqual(Buffer.concat([data, noSuchHandle(6)]));
  });

  it('answers at once when no target reply is in progress', async () => {
    const caller = peer();
    const target = peer();
    new SftpRelay(caller.channel as unknown as ServerChannel, target.channel as unknown as ClientChannel, deps);
    caller.channel.push(fstatUnknown(6));
    await settle();
    expect(Buffer.concat(caller.written)).toEqual(noSuchHandle(6));
  });

  it('stops reading requests while the caller does not read its replies, and reads on once it does', async () => {
    const caller = peer(false);
    const target = peer();
    new SftpRelay(caller.channel as unknown as ServerChannel, target.channel as unknown as ClientChannel, deps);
    caller.channel.push(Buffer.concat([fstatUnknown(1), fstatUnknown(2)]));
    await settle();
    expect(caller.channel.isPaused()).toBe(true);
    expect(target.channel.isPaused()).toBe(true);

    caller.startReading();
    await settle();
    expect(caller.channel.isPaused()).toBe(false);
    expect(target.channel.isPaused()).toBe(false);
  });
});
