import { LAST_APPLIED_ANNOTATION, SECRET_DATA_MASK } from '../../core/kubernetes/object-masking';
import { applyJsonPatch, MAX_JSON_PATCH_COPY_BYTES, mergePatch, strategicMerge } from '../../core/kubernetes/patch';
import { requestInfo, type ResourceRequestInfo } from '../../core/kubernetes/request-info';
import { kubeMaskingFor } from '../../core/kubernetes/response-masking';
import { CHANGED_MARK, MAX_BODY_NESTING, MAX_REVIEW_BODY_BYTES, PLACEHOLDER_MARK, reviewWrite, type WriteReview } from '../../core/kubernetes/write-review';
import { base64 as b64, KUBE_TEST_PROFILE } from '../support/kube-masking';

const profile = KUBE_TEST_PROFILE;


function resource(request: string): ResourceRequestInfo {
  const [method, url] = request.split(' ') as [string, string];
  const [path, query = ''] = url.split('?') as [string, string?];
  const info = requestInfo(method, path, query, {});
  if (!info.ok || info.value.kind !== 'resource') throw new Error(`not a resource request: ${request}`);
  return info.value;
}

function review(request: string, contentType: string | undefined, body: unknown, live: unknown, withRules = false): WriteReview {
  const result = attempt(request, contentType, body, live, withRules);
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

function attempt(request: string, contentType: string | undefined, body: unknown, live: unknown, withRules = false): ReturnType<typeof reviewWrite> {
  const info = resource(request);
  const raw = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return reviewWrite({ info, contentType, body: raw, live }, kubeMaskingFor(info, withRules ? profile : undefined));
}

const changedLines = (r: WriteReview): string[] => r.diff.split('\n').filter((l) => /^[-+](?![-+]{2} )/.test(l));
const everything = (r: WriteReview): string => [r.title, r.body, r.diff, ...r.notes].join('\n');

const deployment = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'default', resourceVersion: '5', managedFields: [{ manager: 'kubectl', operation: 'Update', fieldsV1: { 'f:spec': {} } }] },
  spec: {
    replicas: 1,
    template: {
      metadata: { labels: { app: 'web' } },
      spec: {
        containers: [
          { name: 'app', image: 'web:1', env: [{ name: 'DB_PASSWORD', value: 'hunter2' }, { name: 'MODE', value: 'fast' }] },
          { name: 'sidecar', image: 'proxy:1' },
        ],
      },
    },
  },
};

const secret = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'db', namespace: 'default', labels: { tier: 'a' }, annotations: { [LAST_APPLIED_ANNOTATION]: JSON.stringify({ kind: 'Secret', stringData: { password: 'hunter2' } }) } },
  data: { password: b64('hunter2'), username: b64('app') },
  type: 'Opaque',
};

describe('the reviewer diff of a held write', () => {
  it('never shows a Secret value a JSON patch copies out of data (the diff masks the copy)', () => {
    const live = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'default', resourceVersion: '3' }, data: { password: b64('hunter2-long') } };
    const r = review('PATCH /api/v1/namespaces/default/secrets/db', 'application/json-patch+json', [{ op: 'copy', from: '/data/password', path: '/metadata/annotations' }], live);
    const copied = review('PATCH /api/v1/namespaces/default/secrets/db', 'application/json-patch+json', [{ op: 'add', path: '/metadata/annotations', value: {} }, { op: 'copy', from: '/data/password', path: '/metadata/annotations/leak' }], live);
    for (const shown of [everything(r), everything(copied)]) {
      expect(shown).not.toContain(b64('hunter2-long'));
      expect(shown).not.toContain('hunter2-long');
    }
    expect(copied.diff).toMatch(/\+\s+leak: /);
  });

  it('shows kubectl scale as the replicas changing on the scale subresource', () => {
    const scale = { kind: 'Scale', apiVersion: 'autoscaling/v1', metadata: { name: 'web', namespace: 'default' }, spec: { replicas: 1 }, status: { replicas: 1 } };
    const r = review('PATCH /apis/apps/v1/namespaces/default/deployments/web/scale', 'application/merge-patch+json', { spec: { replicas: 3 } }, scale);
    expect(r.title).toBe('patch apps/deployments/scale default/web (merge patch)');
    expect(r.diff).toContain('-  replicas: 1\n+  replicas: 3\n');
    expect(r.diff).toMatch(/^--- live default\/web\n\+\+\+ after this patch\n/);
    expect(r.body).toBe('spec:\n  replicas: 3\n');
    expect(r.forward).toEqual({ contentType: 'application/merge-patch+json', body: '{"spec":{"replicas":3}}' });
  });

  it('shows kubectl rollout restart as an added annotation, with env values masked by the caller\'s rules, managedFields left out', () => {
    const patch = { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-12-07T21:00:00Z' } } } } };
    const r = review('PATCH /apis/apps/v1/namespaces/default/deployments/web?fieldManager=kubectl-rollout', 'application/strategic-merge-patch+json', patch, deployment, true);
    expect(r.diff).toContain('+      annotations:\n+        kubectl.kubernetes.io/restartedAt: 2026-12-07T21:00:00Z\n');
    expect(changedLines(r)).toHaveLength(2);
    expect(everything(r)).not.toContain('hunter2');
    expect(`${r.body}${r.diff}`).not.toContain('manager: kubectl');
    expect(r.notes).toContain('metadata.managedFields is left out');
  });

  it('merges a strategic patch\'s containers and env by name, and removes an item marked $patch: delete', () => {
    const patch = { spec: { template: { spec: { containers: [{ name: 'app', image: 'web:2', env: [{ name: 'MODE', $patch: 'delete' }] }] } } } };
    const r = review('PATCH /apis/apps/v1/namespaces/default/deployments/web', 'application/strategic-merge-patch+json', patch, deployment);
    expect(r.diff).toContain('-          image: web:1\n+          image: web:2\n');
    expect(r.diff).toContain('-            - name: MODE\n-              value: fast\n');
    expect(r.diff).not.toContain('-        - name: sidecar');
    expect(r.notes).toEqual(['metadata.managedFields is left out']);
  });

  it('shows what a strategic patch\'s $patch: delete on a map and $patch: replace in a list do: the map emptied, the list replaced', () => {
    const wiped = review('PATCH /api/v1/namespaces/default/configmaps/x', 'application/strategic-merge-patch+json', { data: { $patch: 'delete' } }, { kind: 'ConfigMap', metadata: { name: 'x' }, data: { a: 'b' } });
    expect(changedLines(wiped)).toEqual(['-data:', '-  a: b', '+data: {}']);
    const patch = { spec: { template: { spec: { containers: [{ name: 'app', image: 'web:2' }, { $patch: 'replace' }] } } } };
    const replaced = strategicMerge(deployment, patch).result as typeof deployment;
    expect(replaced.spec.template.spec.containers).toEqual([{ name: 'app', image: 'web:2' }]);
    const odd = review('PATCH /api/v1/namespaces/default/configmaps/x', 'application/strategic-merge-patch+json', { data: { $patch: 'merge', a: 'c' } }, { kind: 'ConfigMap', data: { a: 'b' } });
    expect(odd.notes.join('\n')).toContain('approximate');
  });

  it('says a strategic merge result is approximate when the patch orders lists', () => {
    const patch = { spec: { template: { spec: { $setElementOrder: [{ name: 'sidecar' }, { name: 'app' }], containers: [{ name: 'app', image: 'web:2' }] } } } };
    const r = review('PATCH /apis/apps/v1/namespaces/default/deployments/web', 'application/strategic-merge-patch+json', patch, deployment);
    expect(r.notes.join('\n')).toContain('approximate');
  });

  it('shows a Secret JSON patch with its values masked, and the changed value marked as changed', () => {
    const ops = [{ op: 'replace', path: '/data/password', value: b64('correct horse') }, { op: 'add', path: '/metadata/labels/rotated', value: 'yes' }];
    const r = review('PATCH /api/v1/namespaces/default/secrets/db', 'application/json-patch+json', ops, secret);
    expect(everything(r)).not.toMatch(new RegExp([b64('correct horse'), 'correct horse', b64('hunter2'), 'hunter2', b64('app')].join('|')));
    expect(r.body).toContain('value: "****"');
    expect(r.diff).toContain(`-  password: ${SECRET_DATA_MASK}\n+  password: ${SECRET_DATA_MASK}${CHANGED_MARK}\n`);
    expect(r.diff).toContain('+    rotated: yes\n');
    expect(changedLines(r).join('\n')).not.toContain('username');
    expect(r.forward?.body).toBe(JSON.stringify(ops));
  });

  it('masks the manifest kubectl apply (client-side) puts in its patch\'s last-applied annotation', () => {
    const manifest = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'default' }, stringData: { password: 'correct horse' } };
    const patch = { metadata: { annotations: { [LAST_APPLIED_ANNOTATION]: `${JSON.stringify(manifest)}\n` } }, stringData: { password: 'correct horse' } };
    const r = review('PATCH /api/v1/namespaces/default/secrets/db?fieldManager=kubectl-client-side-apply', 'application/strategic-merge-patch+json', patch, secret);
    expect(everything(r)).not.toMatch(/correct horse|Y29ycmVjdCBob3JzZQ/);
    expect(r.diff).toContain(`+  password: ${SECRET_DATA_MASK}${CHANGED_MARK}\n`);
    expect(JSON.parse(r.forward?.body ?? '')).toEqual(patch);
  });

  it('calls out a Secret update that would store the mask itself (a manifest saved from a masked read)', () => {
    const saved = { ...secret, data: { password: SECRET_DATA_MASK, username: SECRET_DATA_MASK } };
    const r = review('PUT /api/v1/namespaces/default/secrets/db', 'application/json', saved, secret);
    expect(r.diff).toContain(`+  password: ${SECRET_DATA_MASK}${PLACEHOLDER_MARK}\n`);
    expect(r.notes.some((n) => n.startsWith('Secret key password is set to the mask itself'))).toBe(true);
  });

  it('leaves Secret values unmarked when an update does not change them', () => {
    const relabelled = { ...secret, metadata: { ...secret.metadata, labels: { tier: 'b' } } };
    const r = review('PUT /api/v1/namespaces/default/secrets/db', 'application/json', relabelled, secret);
    expect(r.diff).toContain('-    tier: a\n+    tier: b\n');
    expect(r.diff).not.toContain(CHANGED_MARK);
    expect(everything(r)).not.toContain('hunter2');
  });

  it('folds stringData into data as the API server does, marking a value that differs from the live one and not one that matches it', () => {
    const patch = { stringData: { password: 'hunter2', username: 'root' } };
    const r = review('PATCH /api/v1/namespaces/default/secrets/db', 'application/merge-patch+json', patch, secret);
    expect(r.diff).toContain(`-  username: ${SECRET_DATA_MASK}\n+  username: ${SECRET_DATA_MASK}${CHANGED_MARK}\n`);
    expect(changedLines(r).join('\n')).not.toContain('password');
    expect(r.body).toBe('stringData:\n  password: "****"\n  username: "****"\n');
    expect(everything(r)).not.toMatch(/hunter2|root/);
  });

  it('shows a server-side apply (YAML) as the applied configuration, masked, and sends it on as JSON', () => {
    const yaml = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm1\n  namespace: default\ndata:\n  owner: ada@example.com\n  mode: fast\n';
    const live = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm1', namespace: 'default' }, data: { mode: 'slow', extra: 'kept' } };
    const r = review('PATCH /api/v1/namespaces/default/configmaps/cm1?fieldManager=kubectl&force=false', 'application/apply-patch+yaml', yaml, live, true);
    expect(r.title).toBe('patch configmaps default/cm1 (server-side apply)');
    expect(everything(r)).not.toContain('ada@example.com');
    expect(r.diff).toContain('-  mode: slow\n+  mode: fast\n');
    expect(r.notes.join('\n')).toContain('server-side apply: the result is approximate');
    expect(JSON.parse(r.forward?.body ?? '')).toMatchObject({ data: { owner: 'ada@example.com' } });
    expect(r.forward?.contentType).toBe('application/apply-patch+yaml');
  });

  it('shows a create as every line added, and a delete as every line removed', () => {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { a: 'b' } };
    const created = review('POST /api/v1/namespaces/default/configmaps?dryRun=All', 'application/json', cm, { kind: 'ignored' });
    expect(created.diff).toMatch(/^--- \(no live object\)\n\+\+\+ after this create\n@@ -0,0 \+1,6 @@\n/);
    expect(created.title).toBe('create configmaps default/x [dry run]');
    expect(created.notes.join('\n')).toContain('dry run');
    const deleted = review('DELETE /api/v1/namespaces/default/configmaps/x', 'application/json', { propagationPolicy: 'Background' }, cm);
    expect(deleted.diff).toMatch(/^--- live default\/x\n\+\+\+ \(deleted\)\n@@ -1,6 \+0,0 @@\n/);
    expect(deleted.body).toBe('propagationPolicy: Background\n');
    expect(review('DELETE /api/v1/namespaces/default/configmaps/x', undefined, undefined, cm).forward).toBeUndefined();
  });

  it('tells the reviewer that deleting a namespace deletes everything in it (the diff shows only the Namespace)', () => {
    const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'prod' } };
    expect(review('DELETE /api/v1/namespaces/prod', undefined, undefined, ns).notes).toContain('deleting a namespace deletes every object in it');
    expect(review('DELETE /api/v1/namespaces/prod/configmaps/x', undefined, undefined, { kind: 'ConfigMap' }).notes.join('\n')).not.toContain('every object in it');
  });

  it('masks a deleted Secret in the diff', () => {
    const r = review('DELETE /api/v1/namespaces/default/secrets/db', undefined, undefined, secret);
    expect(r.diff).toContain(`-  password: ${SECRET_DATA_MASK}`);
    expect(everything(r)).not.toMatch(/hunter2|aHVudGVyMg/);
  });

  it('shows a JSON patch value keyed __proto__ through the caller\'s detectors (an assigned key would vanish from the review yet be sent)', () => {
    const patch = JSON.parse('[{"op":"add","path":"/data","value":{"__proto__":"sent-and-shown","plain":"x"}}]') as unknown;
    const r = review('PATCH /api/v1/namespaces/default/configmaps/x', 'application/json-patch+json', patch, { kind: 'ConfigMap', metadata: { name: 'x' }, data: {} }, true);
    expect(r.body).toContain('__proto__: sent-and-shown');
    expect(r.forward?.body).toContain('"__proto__":"sent-and-shown"');
  });

  it('tells the reviewer when the object a delete names could not be read, rather than showing an empty diff', () => {
    const r = review('DELETE /api/v1/namespaces/default/secrets/gone', 'application/json', { propagationPolicy: 'Background' }, undefined);
    expect(r.diff).toBe('');
    expect(r.notes).toContain('the object to delete could not be read with the read token (absent, unreadable, or too large): only its name is shown');
    expect(review('DELETE /api/v1/namespaces/default/secrets/db', undefined, undefined, secret).notes.join('\n')).not.toContain('could not be read');
  });

  it('refuses a delete with both a body and options in its query: the API server reads only the body\'s then', () => {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { a: 'b' } };
    const real = attempt('DELETE /api/v1/namespaces/default/configmaps/x?dryRun=All', 'application/json', { propagationPolicy: 'Background' }, cm);
    expect(real).toEqual({ ok: false, error: { code: 'malformed', message: "twokey: a delete with a body takes its options from the body and the API server ignores the query's dryRun: send them in the body" } });
    const orphan = attempt('DELETE /apis/apps/v1/namespaces/default/deployments/web?propagationPolicy=Orphan&gracePeriodSeconds=0', 'application/json', {}, deployment);
    expect(orphan.ok || orphan.error.message).toMatch(/ignores the query's gracePeriodSeconds, propagationPolicy:/);
    expect(attempt('DELETE /api/v1/namespaces/default/configmaps?dryRun=All&labelSelector=a%3Db', 'application/json', {}, undefined).ok).toBe(false);
    const dry = review('DELETE /api/v1/namespaces/default/configmaps/x', 'application/json', { dryRun: ['All'] }, cm);
    expect(dry.title).toBe('delete configmaps default/x [dry run]');
    expect(review('DELETE /api/v1/namespaces/default/configmaps/x?dryRun=All', undefined, undefined, cm).title).toBe('delete configmaps default/x [dry run]');
    expect(review('DELETE /api/v1/namespaces/default/configmaps/x?propagationPolicy=Orphan', undefined, undefined, cm).title).toBe('delete configmaps default/x');
  });

  it('says a JSON patch that does not apply will be refused, and shows only the patch', () => {
    const r = review('PATCH /api/v1/namespaces/default/configmaps/x', 'application/json-patch+json', [{ op: 'test', path: '/data/a', value: 'c' }], { kind: 'ConfigMap', data: { a: 'b' } });
    expect(r.diff).toBe('');
    expect(r.notes.join('\n')).toContain('operation 0: test failed at /data/a');
  });

  it('sends what it decoded and showed, not the caller\'s bytes', () => {
    const r = review('PATCH /api/v1/namespaces/default/configmaps/x', 'application/merge-patch+json', '{"data":{"a":"1"},\n "data":{"a":"2"}}', { kind: 'ConfigMap', data: { a: '0' } });
    expect(r.forward?.body).toBe('{"data":{"a":"2"}}');
    expect(r.body).toBe('data:\n  a: "2"\n');
  });
});

describe('writes the agent cannot show are refused', () => {
  const code = (r: ReturnType<typeof reviewWrite>): string => (r.ok ? 'shown' : r.error.code);
  it.each([
    ['a protobuf body', 'PUT /api/v1/namespaces/default/configmaps/x', 'application/vnd.kubernetes.protobuf', Buffer.from([0x6b, 0x38, 0x73, 0]), 'unreviewable'],
    ['a CBOR apply', 'PATCH /api/v1/namespaces/default/configmaps/x', 'application/apply-patch+cbor', Buffer.from([0xa0]), 'unreviewable'],
    ['a patch without a content type', 'PATCH /api/v1/namespaces/default/configmaps/x', undefined, '{}', 'unreviewable'],
    ['invalid JSON', 'PUT /api/v1/namespaces/default/configmaps/x', 'application/json', '{"a":', 'malformed'],
    ['a JSON patch that is not an array', 'PATCH /api/v1/namespaces/default/configmaps/x', 'application/json-patch+json', '{"op":"add"}', 'malformed'],
    ['an update whose body is not an object', 'PUT /api/v1/namespaces/default/configmaps/x', 'application/json', '[1]', 'malformed'],
    ['YAML with a duplicate key', 'PATCH /api/v1/namespaces/default/configmaps/x', 'application/apply-patch+yaml', 'data:\n  a: 1\ndata:\n  a: 2\n', 'malformed'],
    ['YAML alias expansion (billion laughs)', 'PATCH /api/v1/namespaces/default/configmaps/x', 'application/apply-patch+yaml', `a: &a [x,x,x,x,x,x,x,x,x]\n${Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`).join('\n')}\n`, 'malformed'],
    ['an integer beyond 2^53', 'PUT /api/v1/namespaces/default/configmaps/x', 'application/json', '{"kind":"ConfigMap","spec":{"n":9007199254740993}}', 'unreviewable'],
    ['a create without a body', 'POST /api/v1/namespaces/default/configmaps', 'application/json', undefined, 'malformed'],
    ['a read', 'GET /api/v1/namespaces/default/configmaps/x', 'application/json', '{}', 'unreviewable'],
  ])('refuses %s', (_what, request, contentType, body, expected) => {
    expect(code(attempt(request, contentType, body, undefined))).toBe(expected);
  });

  it('refuses a body nested deeper than the review can walk, as a bad request rather than a stack overflow', () => {
    const deep = (depth: number) => `{"kind":"ConfigMap","data":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const refused = attempt('PUT /api/v1/namespaces/default/configmaps/x', 'application/json', deep(100_000), undefined);
    expect(refused).toEqual({ ok: false, error: { code: 'malformed', message: `twokey: the body nests deeper than ${MAX_BODY_NESTING} levels` } });
    expect(code(attempt('PATCH /api/v1/namespaces/default/configmaps/x', 'application/merge-patch+json', `{"data":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`, { kind: 'ConfigMap' }))).toBe('malformed');
    expect(code(attempt('PUT /api/v1/namespaces/default/configmaps/x', 'application/json', deep(MAX_BODY_NESTING - 2), undefined))).toBe('shown');
  });

  it('refuses a YAML body whose aliases repeat a node into more values than the body has bytes, and reads ordinary aliases', () => {
    const list = Array.from({ length: 2_000 }, (_, i) => `k${i}`).join(', ');
    const text = `kind: ConfigMap\nmetadata: {name: x}\nanchor: &a [${list}]\n${Array.from({ length: 99 }, (_, i) => `x${i}: *a`).join('\n')}\n`;
    const refused = attempt('PATCH /api/v1/namespaces/default/configmaps/x', 'application/apply-patch+yaml', text, undefined);
    expect(refused).toEqual({ ok: false, error: { code: 'too-large', message: `twokey: the body's aliases expand it to more values than its ${text.length} bytes` } });
    const ordinary = review('PATCH /api/v1/namespaces/default/configmaps/x', 'application/apply-patch+yaml', 'kind: ConfigMap\nmetadata: {name: x, labels: &l {app: web}}\nspec: {selector: *l}\n', undefined);
    expect(ordinary.forward?.body).toBe('{"kind":"ConfigMap","metadata":{"name":"x","labels":{"app":"web"}},"spec":{"selector":{"app":"web"}}}');
  });

  it('refuses a body over the API server\'s own limit', () => {
    const big = JSON.stringify({ kind: 'ConfigMap', data: { a: 'x'.repeat(MAX_REVIEW_BODY_BYTES) } });
    expect(code(attempt('PUT /api/v1/namespaces/default/configmaps/x', 'application/json', big, undefined))).toBe('too-large');
  });
});

describe('patch arithmetic', () => {
  it('applies RFC 6902 operations (add at an index and at the end, move, copy, escaped names) without changing the input', () => {
    const doc = { a: [1, 2], 'b/c': { 'd~e': 1 } };
    const result = applyJsonPatch(doc, [
      { op: 'add', path: '/a/1', value: 9 },
      { op: 'add', path: '/a/-', value: 3 },
      { op: 'copy', from: '/b~1c/d~0e', path: '/f' },
      { op: 'move', from: '/f', path: '/g' },
      { op: 'remove', path: '/b~1c' },
    ]);
    expect(result).toEqual({ ok: true, value: { a: [1, 9, 2, 3], g: 1 } });
    expect(doc).toEqual({ a: [1, 2], 'b/c': { 'd~e': 1 } });
  });

  it.each([
    ['removing a missing member', [{ op: 'remove', path: '/x' }]],
    ['an index past the end', [{ op: 'add', path: '/a/5', value: 1 }]],
    ['a leading-zero index', [{ op: 'replace', path: '/a/01', value: 1 }]],
    ['moving a value into itself', [{ op: 'move', from: '/b', path: '/b/c' }]],
    ['an unknown operation', [{ op: 'merge', path: '/a', value: 1 }]],
    ['a path that is not a pointer', [{ op: 'add', path: 'a', value: 1 }]],
  ])('refuses %s', (_what, ops) => {
    expect(applyJsonPatch({ a: [1], b: { c: 1 } }, ops).ok).toBe(false);
  });

  it('refuses a JSON patch whose copies duplicate more than a bound (each copy of the root doubled the document: 40 operations, terabytes)', () => {
    const ops = Array.from({ length: 40 }, (_, i) => ({ op: 'copy', from: '', path: `/c${i}` }));
    const started = performance.now();
    const applied = applyJsonPatch({ kind: 'ConfigMap', data: { a: 'x'.repeat(1000) } }, ops);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(applied).toEqual({ ok: false, error: { operation: expect.any(Number), message: `copies over ${MAX_JSON_PATCH_COPY_BYTES} bytes in one patch` } });
    const r = review('PATCH /api/v1/namespaces/default/configmaps/x', 'application/json-patch+json', ops, { kind: 'ConfigMap', data: { a: 'b' } });
    expect(r.notes.join('\n')).toContain(`copies over ${MAX_JSON_PATCH_COPY_BYTES} bytes in one patch`);
    expect(applyJsonPatch({ a: { b: 1 } }, [{ op: 'copy', from: '/a', path: '/c' }])).toEqual({ ok: true, value: { a: { b: 1 }, c: { b: 1 } } });
  }, 60_000);

  it('merges a strategic patch of 30,000 keyed list items in linear time, deleting and adding by key', () => {
    const env = Array.from({ length: 30_000 }, (_, i) => ({ name: `v${i}`, value: 'x' }));
    const started = performance.now();
    const merged = strategicMerge({ env: [{ name: 'A', value: '1' }, { name: 'v7', value: 'old' }] }, { env: [...env, { name: 'A', $patch: 'delete' }] }).result as { env: { name: string; value: string }[] };
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(merged.env).toHaveLength(30_000);
    expect(merged.env.slice(0, 2)).toEqual([{ name: 'v7', value: 'x' }, { name: 'v0', value: 'x' }]);
  }, 60_000);

  it('keeps a __proto__ key a key in merge and strategic patches', () => {
    const patch = JSON.parse('{"data":{"__proto__":{"polluted":true}}}') as unknown;
    const merged = mergePatch({ data: {} }, patch) as { data: Record<string, unknown> };
    expect(Object.keys(merged.data)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const strategic = strategicMerge({ data: {} }, patch).result as { data: Record<string, unknown> };
    expect(Object.keys(strategic.data)).toEqual(['__proto__']);
  });

  it('removes members set to null in a merge patch', () => {
    expect(mergePatch({ a: 1, b: { c: 2, d: 3 } }, { a: null, b: { c: null } })).toEqual({ b: { d: 3 } });
  });
});
