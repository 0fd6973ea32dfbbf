import { decodeProtobuf, PROTOBUF_MAGIC } from '../../support/kube-fixture/protobuf';
import { KubeStatusError } from '../../support/kube-fixture/status';

const varint = (n: number): Buffer => {
  const out: number[] = [];
  let v = n;
  do {
    out.push((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>>= 7;
  } while (v > 0);
  return Buffer.from(out);
};
const field = (number: number, bytes: Buffer | string): Buffer => {
  const b = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  return Buffer.concat([varint((number << 3) | 2), varint(b.length), b]);
};
const int = (number: number, value: number): Buffer => Buffer.concat([varint(number << 3), varint(value)]);
const entry = (key: string, value: string): Buffer => Buffer.concat([field(1, key), field(2, value)]);
const envelope = (apiVersion: string, kind: string, raw: Buffer): Buffer => Buffer.concat([PROTOBUF_MAGIC, field(1, Buffer.concat([field(1, apiVersion), field(2, kind)])), field(2, raw)]);

const statusOf = (fn: () => unknown): number | undefined => {
  try {
    fn();
  } catch (e) {
    if (e instanceof KubeStatusError) return e.status.code;
    throw e;
  }
  return undefined;
};

describe('protobuf request bodies', () => {
  it('decodes a Secret with metadata, bytes data and type into its JSON form', () => {
    const raw = Buffer.concat([field(1, Buffer.concat([field(1, 'db'), field(3, 'default'), field(11, entry('app', 'db'))])), field(2, entry('password', 'hunter2')), field(3, 'Opaque')]);
    expect(decodeProtobuf(envelope('v1', 'Secret', raw))).toEqual({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'default', labels: { app: 'db' } }, data: { password: Buffer.from('hunter2').toString('base64') }, type: 'Opaque' });
  });

  it('keeps a pointer field set to zero (replicas: 0) and skips fields it does not know', () => {
    const raw = Buffer.concat([field(1, field(1, 'web')), field(2, Buffer.concat([int(1, 0), field(99, 'ignored')]))]);
    expect(decodeProtobuf(envelope('apps/v1', 'Deployment', raw))).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { replicas: 0 } });
  });

  it('answers 400 to a body cut inside a field (a cut between fields is still a message), and to one without the magic prefix', () => {
    const good = envelope('v1', 'ConfigMap', field(1, field(1, 'x')));
    for (let i = PROTOBUF_MAGIC.length + 1; i < good.length; i++) expect([undefined, 400]).toContain(statusOf(() => decodeProtobuf(good.subarray(0, i))));
    expect(statusOf(() => decodeProtobuf(good.subarray(0, good.length - 1)))).toBe(400);
    expect(statusOf(() => decodeProtobuf(Buffer.from('{"kind":"ConfigMap"}')))).toBe(400);
  });

  it('answers 415 to a kind it cannot decode', () => {
    expect(statusOf(() => decodeProtobuf(envelope('rbac.authorization.k8s.io/v1', 'Role', Buffer.alloc(0))))).toBe(415);
  });
});
