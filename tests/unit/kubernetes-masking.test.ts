import { JsonStreamSplitter, MAX_KUBE_OBJECT_BYTES, type JsonPieces } from '../../core/kubernetes/json-stream';
import { LAST_APPLIED_ANNOTATION, maskKubeObject, SECRET_DATA_MASK, type KubeMasking } from '../../core/kubernetes/object-masking';
import { requestInfo } from '../../core/kubernetes/request-info';
import { planResponse, responseMasker, upstreamAccept, type ResponsePlan } from '../../core/kubernetes/response-masking';
import { base64 as b64, KUBE_TEST_PROFILE } from '../support/kube-masking';
import { random } from '../support/random';

const KUBECTL_TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json';

const profile = KUBE_TEST_PROFILE;
const NO_RULES: KubeMasking = { profile: undefined, secrets: false };
const RULES: KubeMasking = { profile, secrets: false };


function secret(name: string, values: Record<string, string>): Record<string, unknown> {
  const data = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, b64(v)]));
  const applied = { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'default' }, stringData: values };
  return {
    kind: 'Secret',
    apiVersion: 'v1',
    metadata: { name, namespace: 'default', resourceVersion: '42', annotations: { [LAST_APPLIED_ANNOTATION]: `${JSON.stringify(applied)}\n`, team: 'payments' } },
    data,
    type: 'Opaque',
  };
}

const SECRET = secret('db', { password: 'hunter2', username: 'app' });

/** Everything a response carries must not contain these (the Secret's values, raw or in base64). */
const CLEAR_VALUES = ['hunter2', b64('hunter2'), '\\"app\\"', b64('app')];
const expectNoSecretValues = (text: string): void => {
  for (const v of CLEAR_VALUES) expect(text).not.toContain(v);
};

/** A response masked through the streaming masker, fed in the given chunks. */
function maskResponse(plan: ResponsePlan, body: string | Buffer, masking: KubeMasking, chunks: (b: Buffer) => Buffer[] = (b) => [b], contentType = 'application/json'): string {
  if (plan.body === 'pass' || plan.body === 'refuse') throw new Error('the plan does not mask the response');
  const masker = responseMasker(plan, { contentType, contentEncoding: undefined }, masking);
  if (!masker.ok) throw new Error(masker.error.message);
  let out = '';
  for (const c of chunks(Buffer.isBuffer(body) ? body : Buffer.from(body))) {
    const r = masker.value.push(c);
    if (!r.ok) throw new Error(r.error.message);
    out += r.value;
  }
  const end = masker.value.end();
  if (!end.ok) throw new Error(end.error.message);
  return out + end.value;
}

const DOCUMENT: ResponsePlan = { body: 'document', accept: 'application/json', acceptEncoding: 'identity' };
const WATCH: ResponsePlan = { body: 'watch', accept: 'application/json', acceptEncoding: 'identity' };
const split = (size: number) => (b: Buffer): Buffer[] => {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
};
const at = (points: number[]) => (b: Buffer): Buffer[] => [0, ...points, b.length].slice(1).map((end, i, ends) => b.subarray(i === 0 ? 0 : (ends[i - 1] as number), end));

describe('Secret masking (whatever the policy says)', () => {
  it('masks a Secret value copied elsewhere into the Secret (an annotation, an owner reference) by an approved JSON patch', () => {
    const copied = { ...SECRET, metadata: { ...(SECRET.metadata as object), annotations: { team: 'payments', copy: b64('hunter2'), wrapped: `pw=${b64('hunter2')};` }, ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: b64('hunter2'), uid: 'u' }] } };
    const out = JSON.stringify(maskKubeObject(copied, NO_RULES));
    for (const clear of CLEAR_VALUES) expect(out).not.toContain(clear);
    expect(out).toContain('"team":"payments"');
    expect(out).toContain('"name":"db"');
  });

  it('replaces every data value by base64 of **** and every stringData value by ****, keeping the keys', () => {
    const masked = maskKubeObject({ ...SECRET, stringData: { token: 'abc' } }, NO_RULES) as Record<string, Record<string, string>>;
    expect(masked.data).toEqual({ password: SECRET_DATA_MASK, username: SECRET_DATA_MASK });
    expect(Buffer.from(SECRET_DATA_MASK, 'base64').toString()).toBe('****');
    expect(masked.stringData).toEqual({ token: '****' });
    expect(masked.type).toBe('Opaque');
  });

  it('masks the values inside the last-applied-configuration annotation and keeps it valid JSON', () => {
    const masked = maskKubeObject(SECRET, NO_RULES) as { metadata: { annotations: Record<string, string> } };
    const applied = JSON.parse(masked.metadata.annotations[LAST_APPLIED_ANNOTATION] as string) as { stringData: Record<string, string> };
    expect(applied.stringData).toEqual({ password: '****', username: '****' });
    expect(masked.metadata.annotations[LAST_APPLIED_ANNOTATION]?.endsWith('\n')).toBe(true);
    expect(masked.metadata.annotations.team).toBe('payments');
  });

  it('masks a last-applied annotation that is not JSON in full on a Secret', () => {
    const odd = { ...SECRET, metadata: { name: 'x', annotations: { [LAST_APPLIED_ANNOTATION]: 'password: hunter2' } } };
    expect(JSON.stringify(maskKubeObject(odd, NO_RULES))).not.toContain('hunter2');
  });

  it('masks a last-applied annotation as a Secret when the object carrying it is one, whatever kind the annotation claims', () => {
    const claimsConfigMap = { ...SECRET, metadata: { name: 'x', annotations: { [LAST_APPLIED_ANNOTATION]: JSON.stringify({ kind: 'ConfigMap', data: { password: 'hunter2' } }) } } };
    expect(JSON.stringify(maskKubeObject(claimsConfigMap, NO_RULES))).not.toContain('hunter2');
  });

  it('does not change the object it was given', () => {
    const copy = JSON.parse(JSON.stringify(SECRET)) as unknown;
    maskKubeObject(SECRET, RULES);
    expect(SECRET).toEqual(copy);
  });

  it('masks a single Secret streamed in any split (kubectl get secret db -o yaml)', () => {
    const body = JSON.stringify(SECRET);
    const whole = maskResponse(DOCUMENT, body, NO_RULES);
    expectNoSecretValues(whole);
    expect(JSON.parse(whole)).toEqual(maskKubeObject(SECRET, NO_RULES));
    for (let i = 1; i < body.length; i++) expect(maskResponse(DOCUMENT, body, NO_RULES, at([i]))).toBe(whole);
  });

  it('masks a SecretList item by item (items carry no kind), split anywhere, one byte at a time too', () => {
    const items = [secret('a', { password: 'hunter2' }), secret('b', { username: 'app' })].map(({ kind: _k, apiVersion: _a, ...rest }) => rest);
    const list = { kind: 'SecretList', apiVersion: 'v1', metadata: { resourceVersion: '7' }, items };
    const body = JSON.stringify(list);
    const whole = maskResponse(DOCUMENT, body, NO_RULES);
    expectNoSecretValues(whole);
    expect(JSON.parse(whole)).toEqual(maskKubeObject(list, NO_RULES));
    expect(maskResponse(DOCUMENT, body, NO_RULES, split(1))).toBe(whole);
    for (let i = 1; i < body.length; i += 7) for (const j of [i + 1, i + 13]) expect(maskResponse(DOCUMENT, body, NO_RULES, at([i, Math.min(j, body.length)]))).toBe(whole);
  });

  it('emits a list item as soon as it is complete, before the list ends', () => {
    const masker = responseMasker(DOCUMENT, { contentType: 'application/json', contentEncoding: undefined }, NO_RULES);
    if (!masker.ok) throw new Error(masker.error.message);
    const first = masker.value.push(Buffer.from(`{"kind":"SecretList","apiVersion":"v1","metadata":{},"items":[${JSON.stringify(SECRET)},{"metadata":`));
    expect(first.ok && first.value).toMatch(/^\{"kind":"SecretList","apiVersion":"v1","metadata":\{\},"items":\[\{"kind":"Secret".*KioqKg==.*\}$/);
  });

  it('masks an item of a SecretList as a Secret even when it claims another kind', () => {
    const list = { kind: 'SecretList', apiVersion: 'v1', metadata: {}, items: [{ ...SECRET, kind: 'ConfigMap' }] };
    expectNoSecretValues(JSON.stringify(maskKubeObject(list, NO_RULES)));
  });

  it('masks Secrets in a mixed List (each item says its kind)', () => {
    const list = { kind: 'List', apiVersion: 'v1', metadata: {}, items: [SECRET, { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'c' }, data: { owner: 'ada@example.com', mode: 'fast' } }] };
    const out = JSON.parse(maskResponse(DOCUMENT, JSON.stringify(list), RULES)) as { items: { data: Record<string, string> }[] };
    expect(out.items[0]?.data).toEqual({ password: SECRET_DATA_MASK, username: SECRET_DATA_MASK });
    expect(out.items[1]?.data.owner).not.toContain('ada@example.com');
    expect(out.items[1]?.data.mode).toBe('fast');
  });
});

describe('streaming is invisible: any split of any body masks to what the whole body masks to', () => {
  /** Strings that stress the splitter: quotes, backslashes, brackets and commas inside strings, multi-byte UTF-8, escapes. */
  const ATOMS = ['"', '\\', '{', '}', '[', ']', ',', ':', 'é', '💥', '\u0000', 'items', 'rows', 'hunter2', 'ada@example.com', ' '];
  function text(rnd: () => number): string {
    let out = '';
    for (let n = Math.floor(rnd() * 6); n > 0; n--) out += ATOMS[Math.floor(rnd() * ATOMS.length)];
    return out;
  }
  function value(rnd: () => number, depth: number): unknown {
    const pick = rnd();
    if (depth > 3 || pick < 0.3) return text(rnd);
    if (pick < 0.4) return Math.floor(rnd() * 1000) - 500;
    if (pick < 0.45) return null;
    if (pick < 0.7) return Array.from({ length: Math.floor(rnd() * 3) }, () => value(rnd, depth + 1));
    return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 4) }, () => [text(rnd), value(rnd, depth + 1)]));
  }
  function item(rnd: () => number): Record<string, unknown> {
    const data = Object.fromEntries(Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => [text(rnd) || 'k', b64(`SECRETVALUE${text(rnd)}`)]));
    return { metadata: { name: text(rnd), annotations: { note: text(rnd), [LAST_APPLIED_ANNOTATION]: JSON.stringify({ kind: 'Secret', data }) } }, data, extra: value(rnd, 0) };
  }
  function body(rnd: () => number): { plan: ResponsePlan; text: string } {
    const items = Array.from({ length: Math.floor(rnd() * 4) }, () => item(rnd));
    const pick = rnd();
    if (pick < 0.4) return { plan: DOCUMENT, text: JSON.stringify({ kind: 'SecretList', apiVersion: 'v1', metadata: { continue: text(rnd) }, items }, null, rnd() < 0.5 ? 0 : 1) };
    if (pick < 0.7) {
      const rows = items.map((object) => ({ cells: [text(rnd), value(rnd, 2)], object: { kind: 'Secret', ...object } }));
      return { plan: DOCUMENT, text: JSON.stringify({ kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: {}, columnDefinitions: [{ name: text(rnd) }], rows }) };
    }
    return { plan: WATCH, text: items.map((object) => `${JSON.stringify({ type: 'ADDED', object: { kind: 'Secret', ...object } })}\n`).join('') };
  }

  it('holds for 300 generated lists, Tables and watch streams cut at random points', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rnd = random(seed);
      const { plan, text: generated } = body(rnd);
      const bytes = Buffer.from(generated);
      const whole = maskResponse(plan, bytes, RULES);
      const cuts = Array.from({ length: 1 + Math.floor(rnd() * 5) }, () => Math.floor(rnd() * bytes.length)).sort((a, b) => a - b);
      expect({ seed, out: maskResponse(plan, bytes, RULES, at(cuts)) }).toEqual({ seed, out: whole });
      expect({ seed, leaked: whole.includes(b64('SECRETVALUE').slice(0, 12)) }).toEqual({ seed, leaked: false });
      if (plan.body === 'document') expect({ seed, doc: JSON.parse(whole) as unknown }).toEqual({ seed, doc: maskKubeObject(JSON.parse(generated), RULES) });
    }
  });
});

describe('Table responses (kubectl get asks for as=Table)', () => {
  const columnDefinitions = [{ name: 'Name', type: 'string', format: 'name' }, { name: 'Type', type: 'string' }, { name: 'Data', type: 'string' }];
  const table = (objects: unknown[]): Record<string, unknown> => ({
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion: '9' },
    columnDefinitions,
    rows: objects.map((object) => ({ cells: ['db', 'Opaque', 2], object })),
  });
  const partial = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: SECRET.metadata };

  it('masks the full objects of includeObject=Object rows', () => {
    const out = maskResponse(DOCUMENT, JSON.stringify(table([SECRET])), NO_RULES, split(5));
    expectNoSecretValues(out);
    expect(JSON.parse(out)).toEqual(maskKubeObject(table([SECRET]), NO_RULES));
  });

  it('masks the last-applied annotation of the metadata-only rows kubectl gets by default', () => {
    const out = maskResponse(DOCUMENT, JSON.stringify(table([partial])), { profile: undefined, secrets: true }, split(3));
    expectNoSecretValues(out);
    const row = (JSON.parse(out) as { rows: { cells: unknown[]; object: { metadata: { annotations: Record<string, string> } } }[] }).rows[0];
    expect(row?.cells).toEqual(['db', 'Opaque', 2]);
    expect(JSON.parse(row?.object.metadata.annotations[LAST_APPLIED_ANNOTATION] as string)).toMatchObject({ stringData: { password: '****' } });
  });

  it('masks a Secret last-applied annotation in a metadata-only row even when the request was not for Secrets', () => {
    expectNoSecretValues(maskResponse(DOCUMENT, JSON.stringify(table([partial])), NO_RULES));
  });

  it('runs the detectors over Table cells when mask rules apply', () => {
    const t = { ...table([]), rows: [{ cells: ['web', 'ada@example.com', 3] }] };
    const out = JSON.parse(maskResponse(DOCUMENT, JSON.stringify(t), RULES)) as { rows: { cells: unknown[] }[] };
    expect(out.rows[0]?.cells[0]).toBe('web');
    expect(out.rows[0]?.cells[1]).not.toContain('ada@example.com');
    expect(out.rows[0]?.cells[2]).toBe(3);
  });
});

describe('watch streams (kubectl get -w)', () => {
  const events = [
    { type: 'ADDED', object: SECRET },
    { type: 'MODIFIED', object: { ...SECRET, data: { password: b64('hunter2') } } },
    { type: 'BOOKMARK', object: { kind: 'Secret', apiVersion: 'v1', metadata: { resourceVersion: '50', annotations: { 'k8s.io/initial-events-end': 'true' } } } },
    { type: 'ADDED', object: { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: {}, columnDefinitions: [], rows: [{ cells: ['db'], object: SECRET }] } },
    { type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'too old resource version', reason: 'Expired', code: 410 } },
  ];
  const body = events.map((e) => `${JSON.stringify(e)}\n`).join('');

  it('masks each event and writes one per line, split anywhere', () => {
    const whole = maskResponse(WATCH, body, NO_RULES);
    expectNoSecretValues(whole);
    const lines = whole.trimEnd().split('\n');
    expect(lines).toHaveLength(events.length);
    expect((JSON.parse(lines[4] as string) as { object: { code: number } }).object.code).toBe(410);
    expect(maskResponse(WATCH, body, NO_RULES, split(1))).toBe(whole);
    for (let i = 1; i < body.length; i += 3) expect(maskResponse(WATCH, body, NO_RULES, at([i]))).toBe(whole);
  });

  it('emits an event as soon as it is complete', () => {
    const masker = responseMasker(WATCH, { contentType: 'application/json;stream=watch', contentEncoding: undefined }, NO_RULES);
    if (!masker.ok) throw new Error(masker.error.message);
    const out = masker.value.push(Buffer.from(`${JSON.stringify(events[0])}\n{"type":"MOD`));
    expect(out.ok && out.value.split('\n')).toHaveLength(2);
  });

  it('accepts events that are not separated by newlines (the API server frames by JSON value)', () => {
    const packed = events.map((e) => JSON.stringify(e)).join('');
    expect(maskResponse(WATCH, packed, NO_RULES)).toBe(maskResponse(WATCH, body, NO_RULES));
  });
});

describe('ConfigMaps, workloads and annotations through the caller\'s mask rules', () => {
  const deployment = {
    kind: 'Deployment',
    apiVersion: 'apps/v1',
    metadata: { name: 'web', annotations: { contact: 'ada@example.com', 'deployment.kubernetes.io/revision': '3' } },
    spec: {
      replicas: 2,
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          initContainers: [{ name: 'init', image: 'busybox', args: ['--dsn', 'postgres://app@10.0.0.7/db'] }],
          containers: [{ name: 'app', image: 'web:1', env: [{ name: 'DB_PASSWORD', value: 'hunter2' }, { name: 'ADMIN', value: 'ada@example.com' }, { name: 'MODE', value: 'fast' }, { name: 'FROM_SECRET', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } }] }],
        },
      },
    },
  };

  it('masks env values by rule and by detector, and container args', () => {
    const out = maskKubeObject(deployment, RULES) as typeof deployment;
    const env = out.spec.template.spec.containers[0]?.env ?? [];
    expect(env.map((e) => e.value)).toEqual(['****', expect.not.stringContaining('ada@example.com'), 'fast', undefined]);
    expect(env[3]).toEqual(deployment.spec.template.spec.containers[0]?.env[3]);
    expect(out.spec.template.spec.initContainers[0]?.args[1]).not.toContain('10.0.0.7');
    expect(out.spec.replicas).toBe(2);
  });

  it('masks annotations through the detectors and leaves plain ones', () => {
    const out = maskKubeObject(deployment, RULES) as typeof deployment;
    expect(out.metadata.annotations.contact).not.toContain('ada@example.com');
    expect(out.metadata.annotations['deployment.kubernetes.io/revision']).toBe('3');
  });

  it('masks env values of a Pod, a CronJob\'s job template and a ControllerRevision\'s copy of a template', () => {
    const container = { name: 'c', env: [{ name: 'DB_PASSWORD', value: 'hunter2' }] };
    const pod = { kind: 'Pod', apiVersion: 'v1', metadata: { name: 'p' }, spec: { containers: [container] } };
    const cron = { kind: 'CronJob', apiVersion: 'batch/v1', metadata: { name: 'c' }, spec: { schedule: '* * * * *', jobTemplate: { spec: { template: { spec: { containers: [container] } } } } } };
    const revision = { kind: 'ControllerRevision', apiVersion: 'apps/v1', metadata: { name: 'r' }, revision: 2, data: { spec: { template: { spec: { containers: [container] } } } } };
    for (const obj of [pod, cron, revision]) expect(JSON.stringify(maskKubeObject(obj, RULES))).not.toContain('hunter2');
  });

  it('masks ConfigMap data and binaryData through the detectors, binary left byte for byte when clean', () => {
    const cm = { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'c' }, data: { owner: 'ada@example.com', mode: 'fast' }, binaryData: { key: b64('contact ada@example.com'), blob: Buffer.from([0, 1, 2, 255]).toString('base64') } };
    const out = maskKubeObject(cm, RULES) as typeof cm;
    expect(out.data.mode).toBe('fast');
    expect(out.data.owner).not.toContain('ada@example.com');
    expect(Buffer.from(out.binaryData.key, 'base64').toString()).not.toContain('ada@example.com');
    expect(out.binaryData.blob).toBe(cm.binaryData.blob);
  });

  it('masks the ConfigMap values in its last-applied annotation', () => {
    const cm = { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'c', annotations: { [LAST_APPLIED_ANNOTATION]: JSON.stringify({ kind: 'ConfigMap', data: { owner: 'ada@example.com' } }) } }, data: { owner: 'ada@example.com' } };
    expect(JSON.stringify(maskKubeObject(cm, RULES))).not.toContain('ada@example.com');
  });

  it('leaves ConfigMaps and env values as they are without mask rules', () => {
    expect(maskKubeObject(deployment, NO_RULES)).toEqual(deployment);
  });
});

describe('pod logs (kubectl logs -f) through the stream detectors', () => {
  const LOG: ResponsePlan = { body: 'log', acceptEncoding: 'identity' };
  it('masks a value split across chunks', () => {
    const text = 'starting\nuser ada@example.com logged in\nready\n';
    const out = maskResponse(LOG, text, RULES, at([15, 22]), 'text/plain');
    expect(out).toBe(text.replace('ada@example.com', '****'));
  });

  it('masks a JSON Status error answered to a log request as a document', () => {
    const status = { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'container "x" not found', code: 400 };
    expect(JSON.parse(maskResponse(LOG, JSON.stringify(status), RULES))).toEqual(status);
  });

  it('flushes what it held back when the stream idles', () => {
    const masker = responseMasker(LOG, { contentType: 'text/plain', contentEncoding: undefined }, RULES);
    if (!masker.ok) throw new Error(masker.error.message);
    const pushed = masker.value.push(Buffer.from('short line\n'));
    expect(pushed.ok && pushed.value).toBe('');
    expect(masker.value.flush()).toBe('short line\n');
  });
});

describe('responses the agent refuses to pass on', () => {
  const refusal = (body: string | Buffer, plan: ResponsePlan = DOCUMENT, contentType = 'application/json'): string => {
    try {
      maskResponse(plan, body, NO_RULES, (b) => [b], contentType);
      return 'passed';
    } catch (e) {
      return (e as Error).message;
    }
  };

  it.each([
    ['a truncated object', '{"kind":"Secret","data":{"password":"aHVudGVyMg=="'],
    ['a truncated list', '{"kind":"SecretList","items":[{"data":{}}'],
    ['a list item that is not JSON', '{"kind":"SecretList","items":[{"data":{"a":b}}]}'],
    ['a list item that is not an object', '{"kind":"SecretList","items":["aHVudGVyMg=="]}'],
    ['two commas between items', '{"kind":"SecretList","items":[{},,{}]}'],
    ['a trailing comma after the last item', '{"kind":"SecretList","items":[{},]}'],
    ['a second items array', '{"kind":"SecretList","items":null,"items":[{"data":{"a":"aHVudGVyMg=="}}]}'],
    ['members after the items', '{"kind":"SecretList","items":[],"items2":[{"data":{"a":"aHVudGVyMg=="}}]}'],
    ['a document that is not an object', '["aHVudGVyMg=="]'],
    ['a bare string', '"hunter2"'],
    ['bytes after the document', `${JSON.stringify(SECRET)}{"kind":"Secret","data":{"a":"aHVudGVyMg=="}}`],
    ['an unbalanced bracket', '{"kind":"Secret"}}'],
    ['invalid JSON in the envelope', '{"kind":"SecretList",metadata:{},"items":[]}'],
    ['an escaped member name hiding a second items', '{"kind":"SecretList","items":[],"\\u0069tems":[{"data":{"a":"aHVudGVyMg=="}}]}'],
  ])('refuses %s', (_what, body) => {
    expect(refusal(body)).toMatch(/^twokey: /);
  });

  it('refuses a watch stream cut inside an event, and one that carries something other than objects', () => {
    expect(refusal('{"type":"ADDED","object":{"kind":"Secret"', WATCH)).toMatch(/^twokey: .*ended inside/);
    expect(refusal('{"type":"ADDED","object":{}}\n[1]', WATCH)).toMatch(/^twokey: /);
  });

  it('refuses an object over the size cap, and keeps refusing after', () => {
    const big = JSON.stringify({ kind: 'Secret', data: { a: 'x'.repeat(MAX_KUBE_OBJECT_BYTES) } });
    expect(refusal(big)).toMatch(/^twokey: an object in the response is over/);
    const masker = responseMasker(DOCUMENT, { contentType: 'application/json', contentEncoding: undefined }, NO_RULES);
    if (!masker.ok) throw new Error('no masker');
    expect(masker.value.push(Buffer.from(big)).ok).toBe(false);
    expect(masker.value.push(Buffer.from('{}')).ok).toBe(false);
    expect(masker.value.end().ok).toBe(false);
  });

  it('bounds one list item, not the whole list', () => {
    const pieces: JsonPieces = { whole: () => 'W', envelope: () => 'E', item: () => 'I', close: () => 'C' };
    const item = `{"data":{"a":"${'x'.repeat(80)}"}}`;
    const list = `{"kind":"SecretList","items":[${Array(50).fill(item).join(',')}]}`;
    const splitter = new JsonStreamSplitter(pieces, false, 200);
    const pushed = splitter.push(Buffer.from(list));
    expect(pushed.ok && pushed.value).toBe(`E${'I'.repeat(50)}C`);
    expect(new JsonStreamSplitter(pieces, false, 50).push(Buffer.from(list)).ok).toBe(false);
  });

  it('reads a document with many top-level members in linear time (member names are decoded from their own bytes)', () => {
    const members = Array.from({ length: 150_000 }, (_, i) => `"field${i}":${i}`).join(',');
    const body = `{"kind":"Widget",${members}}`;
    const started = Date.now();
    const out = maskResponse(DOCUMENT, body, NO_RULES, split(64 * 1024));
    expect((JSON.parse(out) as Record<string, number>).field149999).toBe(149_999);
    // Linear is well under a second; copying the head per member would take minutes.
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('accepts an empty body (HEAD, 204)', () => {
    expect(refusal('')).toBe('passed');
  });

  it.each([
    ['protobuf', 'application/vnd.kubernetes.protobuf'],
    ['YAML', 'application/yaml'],
    ['HTML', 'text/html'],
  ])('refuses a %s response to a request that must be masked', (_what, contentType) => {
    const masker = responseMasker(DOCUMENT, { contentType, contentEncoding: undefined }, NO_RULES);
    expect(masker.ok ? 'masked' : masker.error.code).toBe('unmaskable');
  });

  it('refuses a gzip-encoded body (the API server compresses large responses for clients that accept it)', () => {
    const masker = responseMasker(DOCUMENT, { contentType: 'application/json', contentEncoding: 'gzip' }, NO_RULES);
    expect(masker.ok ? 'masked' : masker.error.code).toBe('unmaskable');
    expect(responseMasker(DOCUMENT, { contentType: 'application/json', contentEncoding: 'identity' }, NO_RULES).ok).toBe(true);
  });

  it('refuses a log answered with a type that is neither text nor JSON', () => {
    const masker = responseMasker({ body: 'log', acceptEncoding: 'identity' }, { contentType: 'application/octet-stream', contentEncoding: undefined }, RULES);
    expect(masker.ok ? 'masked' : masker.error.code).toBe('unmaskable');
  });
});

describe('which responses are masked, and the Accept sent upstream', () => {
  const plan = (request: string, accept: string | undefined, masksActive = false): ResponsePlan => {
    const [method, url] = request.split(' ') as [string, string];
    const [path, query = ''] = url.split('?') as [string, string?];
    const info = requestInfo(method, path, query, {});
    if (!info.ok) throw new Error(info.error.message);
    return planResponse(info.value, accept, masksActive);
  };

  it('keeps kubectl get\'s Table request a Table request, in JSON', () => {
    expect(plan('GET /api/v1/namespaces/default/secrets', KUBECTL_TABLE_ACCEPT)).toEqual({ body: 'document', accept: KUBECTL_TABLE_ACCEPT, acceptEncoding: 'identity' });
  });

  it('asks for JSON whatever protobuf or YAML the client asked for', () => {
    expect(upstreamAccept('application/vnd.kubernetes.protobuf')).toBe('application/json');
    expect(upstreamAccept('application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io,application/json')).toBe('application/json;as=Table;v=v1;g=meta.k8s.io,application/json');
    expect(upstreamAccept('application/yaml, */*')).toBe('application/json');
    expect(upstreamAccept(undefined)).toBe('application/json');
    expect(upstreamAccept('application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io')).toBe('application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json');
  });

  it('bounds what it keeps of a long Accept header', () => {
    const accept = Array(50).fill('application/json;as=Table;v=v1;g=meta.k8s.io').join(',');
    expect(upstreamAccept(accept).split(',')).toHaveLength(9);
    expect(upstreamAccept(`application/json;x=${'a'.repeat(300)}`)).toBe('application/json');
  });

  it.each([
    ['GET /api/v1/namespaces/default/secrets/db', 'document'],
    ['GET /api/v1/namespaces/default/pods?watch=true', 'watch'],
    ['DELETE /api/v1/namespaces/default/secrets/db', 'document'],
    ['PATCH /api/v1/namespaces/default/secrets/db', 'document'],
    ['GET /apis/apps/v1/deployments', 'document'],
    ['GET /api/v1/namespaces/default/pods/web/log?follow=true', 'pass'],
    ['GET /api/v1/namespaces/default/pods/web/exec?command=sh', 'pass'],
    ['GET /api/v1/nodes/n1/proxy/configz', 'pass'],
    ['GET /apis', 'pass'],
    ['GET /openapi/v2', 'pass'],
  ])('%s without mask rules: %s', (request, body) => {
    expect(plan(request, 'application/vnd.kubernetes.protobuf').body).toBe(body);
  });

  it('refuses a watch over WebSocket (frames the masker cannot read), and passes exec\'s upgrade to the proxy', () => {
    const upgraded = (request: string): ResponsePlan['body'] => {
      const [method, url] = request.split(' ') as [string, string];
      const [path, query = ''] = url.split('?') as [string, string?];
      const info = requestInfo(method, path, query, { upgrade: 'websocket' });
      if (!info.ok) throw new Error(info.error.message);
      return planResponse(info.value, undefined, false).body;
    };
    expect(upgraded('GET /api/v1/namespaces/default/secrets?watch=true')).toBe('refuse');
    expect(upgraded('GET /api/v1/namespaces/default/pods/web/exec?command=sh')).toBe('pass');
  });

  it('masks a pod log when mask rules apply', () => {
    expect(plan('GET /api/v1/namespaces/default/pods/web/log?follow=true', undefined, true)).toEqual({ body: 'log', acceptEncoding: 'identity' });
  });
});
