/** SFTP packets built byte by byte for the tests of the relay's framing and streams. */

export const uint32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

export const uint64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};

/** A packet's body: its type byte and fields. */
export const packet = (type: number, ...parts: Buffer[]): Buffer => Buffer.concat([Buffer.from([type]), ...parts]);

/** A packet as it goes on the wire, its length first. */
export const framed = (body: Buffer): Buffer => Buffer.concat([uint32(body.length), body]);

/** A packet of `type` with its fields, as it goes on the wire. */
export const wirePacket = (type: number, ...parts: Buffer[]): Buffer => framed(packet(type, ...parts));
