import { decodeProtobufObject } from '../../../core/kubernetes/protobuf-object';
import { bytesField, entry, envelope, objectMeta, varintField } from '../../support/kube-protobuf';


describe('protobuf request bodies read for review', () => {
  it('reads a ConfigMap as kubectl create configmap sends it into the JSON object it encodes', () => {
    const raw = Buffer.concat([bytesField(1, objectMeta('settings', [entry(11, 'app', 'web')])), entry(2, 'a', 'b'), entry(2, 'mode', 'fast')]);
    expect(decodeProtobufObject(envelope('v1', 'ConfigMap', raw))).toEqual({
      ok: true,
      value: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'default', labels: { app: 'web' } }, data: { a: 'b', mode: 'fast' } },
    });
  });

  it('reads Secret data as base64 and keeps a pointer set to false', () => {
    const raw = Buffer.concat([bytesField(1, objectMeta('creds')), entry(2, 'token', Buffer.from('s3cret')), bytesField(3, 'Opaque'), varintField(5, 0)]);
    expect(decodeProtobufObject(envelope('v1', 'Secret', raw))).toEqual({
      ok: true,
      value: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace: 'default' }, data: { token: Buffer.from('s3cret').toString('base64') }, type: 'Opaque', immutable: false },
    });
  });

  it('keeps a data key named __proto__ as data, shown and sent like any other', () => {
    const raw = Buffer.concat([bytesField(1, objectMeta('odd-keys')), entry(2, '__proto__', 'kept')]);
    const read = decodeProtobufObject(envelope('v1', 'ConfigMap', raw));
    expect(read.ok && JSON.stringify(read.value)).toBe('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"odd-keys","namespace":"default"},"data":{"__proto__":"kept"}}');
  });

  it('refuses a field number it does not know instead of skipping it', () => {
    const raw = Buffer.concat([bytesField(1, objectMeta('x')), entry(2, 'a', 'b'), bytesField(9, 'hidden')]);
    expect(decodeProtobufObject(envelope('v1', 'ConfigMap', raw))).toEqual({ ok: false, error: 'the protobuf body cannot be read: ConfigMap has a field (9) the agent does not know' });
  });

  it('refuses server-owned metadata a client never sends (managedFields)', () => {
    const raw = bytesField(1, objectMeta('x', [bytesField(17, bytesField(1, 'kubectl'))]));
    expect(decodeProtobufObject(envelope('v1', 'ConfigMap', raw))).toMatchObject({ ok: false, error: expect.stringContaining('ObjectMeta has a field (17)') });
  });

  it('refuses a singular field sent twice (protobuf would keep the last; a reviewer might read the first)', () => {
    const raw = Buffer.concat([bytesField(1, objectMeta('x')), bytesField(3, 'Opaque'), bytesField(3, 'kubernetes.io/tls')]);
    expect(decodeProtobufObject(envelope('v1', 'Secret', raw))).toMatchObject({ ok: false, error: expect.stringContaining('Secret.type is sent twice') });
  });

  it('refuses a map key sent twice, a wrong wire type, a truncated field and a set timestamp', () => {
    const twice = Buffer.concat([bytesField(1, objectMeta('x')), entry(2, 'a', 'one'), entry(2, 'a', 'two')]);
    expect(decodeProtobufObject(envelope('v1', 'ConfigMap', twice))).toMatchObject({ ok: false, error: expect.stringContaining('the key "a" twice') });
    const wire = Buffer.concat([bytesField(1, objectMeta('x')), varintField(2, 5)]);
    expect(decodeProtobufObject(envelope('v1', 'ConfigMap', wire))).toMatchObject({ ok: false, error: expect.stringContaining('wrong wire type') });
    const cut = envelope('v1', 'ConfigMap', bytesField(1, objectMeta('x'))).subarray(0, -6);
    expect(decodeProtobufObject(cut)).toMatchObject({ ok: false });
    const dated = Buffer.concat([bytesField(1, Buffer.concat([bytesField(1, 'x'), bytesField(8, varintField(1, 1_700_000_000))]))]);
    expect(decodeProtobufObject(envelope('v1', 'ConfigMap', dated))).toMatchObject({ ok: false, error: expect.stringContaining('timestamp') });
  });

  it('refuses kinds whose schema it does not list whole, and bodies without the prefix', () => {
    expect(decodeProtobufObject(envelope('v1', 'Pod', bytesField(1, objectMeta('p'))))).toEqual({ ok: false, error: 'the agent reads protobuf bodies of ConfigMap, Secret, Namespace, ServiceAccount, not Pod' });
    expect(decodeProtobufObject(Buffer.from('{"kind":"ConfigMap"}'))).toEqual({ ok: false, error: 'the body lacks the k8s protobuf prefix' });
  });

  it('refuses an envelope that says its object is compressed or in another encoding', () => {
    const body = Buffer.concat([Buffer.from('k8s\u0000', 'latin1'), bytesField(1, Buffer.concat([bytesField(1, 'v1'), bytesField(2, 'ConfigMap')])), bytesField(2, bytesField(1, objectMeta('x'))), bytesField(3, 'gzip'), bytesField(4, '')]);
    expect(decodeProtobufObject(body)).toMatchObject({ ok: false, error: expect.stringContaining('encoding') });
  });

  it('reads a held body of a quarter million repeated items in linear time (each item was copied into a new list: quadratic, minutes of a blocked agent)', () => {
    const items = 250_000;
    const finalizers = Buffer.alloc(items * 2);
    for (let i = 0; i < items; i++) finalizers[2 * i] = (14 << 3) | 2; // ObjectMeta.finalizers, an empty string
    const body = envelope('v1', 'ConfigMap', bytesField(1, Buffer.concat([objectMeta('many'), finalizers])));
    const started = performance.now();
    const read = decodeProtobufObject(body);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(read.ok && (read.value.metadata as { finalizers: string[] }).finalizers).toHaveLength(items);
  }, 60_000);

  it('keeps a map key named __proto__ a key (a valid ConfigMap key, which an assignment would drop silently)', () => {
    const raw = Buffer.concat([bytesField(1, objectMeta('odd')), entry(2, '__proto__', 'kept'), entry(2, 'b', 'c')]);
    const read = decodeProtobufObject(envelope('v1', 'ConfigMap', raw));
    expect(read.ok && JSON.stringify(read.value.data)).toBe('{"__proto__":"kept","b":"c"}');
    expect(decodeProtobufObject(envelope('v1', 'ConfigMap', Buffer.concat([raw, entry(2, '__proto__', 'again')])))).toMatchObject({ ok: false });
  });
});
