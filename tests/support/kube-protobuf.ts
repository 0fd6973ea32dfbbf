/** Kubernetes protobuf bodies built by hand, as Go's generated marshalers write them (fields in number order, empty non-pointer fields written too). */
export const varint = (n: number): Buffer => {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
};

export const bytesField = (num: number, value: Buffer | string): Buffer => {
  const b = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
  return Buffer.concat([varint((num << 3) | 2), varint(b.length), b]);
};

export const varintField = (num: number, value: number): Buffer => Buffer.concat([varint(num << 3), varint(value)]);

/** One map entry (a message of key 1 and value 2). */
export const entry = (num: number, key: string, value: Buffer | string): Buffer => bytesField(num, Buffer.concat([bytesField(1, key), bytesField(2, value)]));

/** ObjectMeta with every non-pointer field (empty but the name and namespace), then `extra`. */
export const objectMeta = (name: string, extra: Buffer[] = []): Buffer =>
  Buffer.concat([bytesField(1, name), bytesField(2, ''), bytesField(3, 'default'), bytesField(4, ''), bytesField(5, ''), bytesField(6, ''), varintField(7, 0), bytesField(8, Buffer.alloc(0)), ...extra]);

/** The `k8s\0` magic and the runtime.Unknown envelope around an object's bytes. */
export const envelope = (apiVersion: string, kind: string, raw: Buffer): Buffer =>
  Buffer.concat([Buffer.from('k8s\u0000', 'latin1'), bytesField(1, Buffer.concat([bytesField(1, apiVersion), bytesField(2, kind)])), bytesField(2, raw), bytesField(3, ''), bytesField(4, '')]);
