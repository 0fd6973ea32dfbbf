/** RFC 4251 §5 data types as SSH encodes keys: `uint32` and length-prefixed `string`s. */

/** Reads `uint32`s and `string`s; every read is bounded by what is left (undefined when it would overrun). */
export class SshWireReader {
  private offset = 0;
  constructor(private readonly data: Buffer) {}

  uint32(): number | undefined {
    if (this.offset + 4 > this.data.length) return undefined;
    this.offset += 4;
    return this.data.readUInt32BE(this.offset - 4);
  }

  /** A uint64 as a number; undefined past 2^53 (no file offset or size here comes near it). */
  uint64(): number | undefined {
    if (this.offset + 8 > this.data.length) return undefined;
    const value = this.data.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
  }

  string(): Buffer | undefined {
    const length = this.uint32();
    if (length === undefined || length > this.data.length - this.offset) return undefined;
    this.offset += length;
    return this.data.subarray(this.offset - length, this.offset);
  }

  get done(): boolean {
    return this.offset === this.data.length;
  }
}

export function sshString(value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}
