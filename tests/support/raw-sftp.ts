import type { Client, ClientChannel } from 'ssh2';
import { SFTP_TYPE } from '../../agent/ssh/sftp/packets';
import { uint32, wirePacket } from './sftp-bytes';

/** A reply as the raw client reads it: its type, and for STATUS its code and message. */
export interface RawSftpReply {
  readonly type: number;
  readonly id: number;
  readonly status?: number;
  readonly message?: string;
  /** The fields after the id (HANDLE's handle string, NAME's entries, ...). */
  readonly rest: Buffer;
}

/** An SSH string: its length, then its bytes. */
export const sshBytes = (value: string | Buffer): Buffer => {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([uint32(bytes.length), bytes]);
};

/**
 * An SFTP client that sends whatever bytes a test builds (requests ssh2's SFTP client has no call
 * for, crafted extension payloads) and reads the replies by id.
 */
export class RawSftp {
  private buffered = Buffer.alloc(0);
  private readonly waiting = new Map<number, (reply: RawSftpReply) => void>();
  private nextId = 1;

  private constructor(readonly channel: ClientChannel) {
    channel.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /** The sftp subsystem on `client`, past INIT and VERSION. */
  static async open(client: Client): Promise<RawSftp> {
    const channel = await new Promise<ClientChannel>((resolve, reject) => client.subsys('sftp', (e, c) => (e ? reject(e) : resolve(c))));
    const raw = new RawSftp(channel);
    const version = new Promise<RawSftpReply>((resolve) => raw.waiting.set(-1, resolve));
    channel.write(wirePacket(SFTP_TYPE.init, uint32(3)));
    await version;
    return raw;
  }

  /** Sends a request of `type` whose fields after the id are `fields`; resolves with its reply. */
  request(type: number, ...fields: Buffer[]): Promise<RawSftpReply> {
    const id = this.nextId++;
    const reply = new Promise<RawSftpReply>((resolve) => this.waiting.set(id, resolve));
    this.channel.write(wirePacket(type, uint32(id), ...fields));
    return reply;
  }

  /** Sends requests that all carry `id` at once, as a caller reusing an id would; resolves with that many replies to it, as they came. */
  sameId(id: number, ...requests: Array<[number, ...Buffer[]]>): Promise<RawSftpReply[]> {
    return new Promise((resolve) => {
      const got: RawSftpReply[] = [];
      const take = (reply: RawSftpReply): void => {
        got.push(reply);
        if (got.length === requests.length) resolve(got);
        else this.waiting.set(id, take);
      };
      this.waiting.set(id, take);
      // One write: the requests reach the relay together, before any answer can.
      this.channel.write(Buffer.concat(requests.map(([type, ...fields]) => wirePacket(type, uint32(id), ...fields))));
    });
  }

  /** An EXTENDED request named `name` carrying `payload`. */
  extended(name: string | Buffer, ...payload: Buffer[]): Promise<RawSftpReply> {
    return this.request(SFTP_TYPE.extended, sshBytes(name), ...payload);
  }

  private onData(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 4 && this.buffered.length >= 4 + this.buffered.readUInt32BE(0)) {
      const body = this.buffered.subarray(4, 4 + this.buffered.readUInt32BE(0));
      this.buffered = this.buffered.subarray(4 + body.length);
      const type = body[0] ?? 0;
      if (type === SFTP_TYPE.version) {
        this.settle(-1, { type, id: -1, rest: body.subarray(5) });
        continue;
      }
      const id = body.readUInt32BE(1);
      const rest = body.subarray(5);
      if (type !== SFTP_TYPE.status) {
        this.settle(id, { type, id, rest });
        continue;
      }
      const status = rest.readUInt32BE(0);
      const length = rest.readUInt32BE(4);
      this.settle(id, { type, id, status, message: rest.subarray(8, 8 + length).toString('utf8'), rest });
    }
  }

  private settle(id: number, reply: RawSftpReply): void {
    const resolve = this.waiting.get(id);
    this.waiting.delete(id);
    resolve?.(reply);
  }
}
