import { jsonPatch, mergePatch, strategicMerge } from '../../support/kube-fixture/patch';
import { KubeStatusError } from '../../support/kube-fixture/status';

describe('patches', () => {
  it('merges containers by name in a strategic merge patch and replaces unkeyed lists', () => {
    const live = { spec: { containers: [{ name: 'a', image: 'a:1' }, { name: 'b', image: 'b:1' }], args: ['x'] } };
    const patched = strategicMerge(live, { spec: { containers: [{ name: 'b', image: 'b:2' }, { name: 'c', image: 'c:1' }], args: ['y'], $setElementOrder: 'ignored' } });
    expect(patched).toEqual({ spec: { containers: [{ name: 'a', image: 'a:1' }, { name: 'b', image: 'b:2' }, { name: 'c', image: 'c:1' }], args: ['y'], $setElementOrder: 'ignored' } });
    expect(strategicMerge(live, { spec: { containers: [{ name: 'a', $patch: 'delete' }] } })).toEqual({ spec: { containers: [{ name: 'b', image: 'b:1' }], args: ['x'] } });
  });

  it('keeps a "__proto__" key as a plain field (a valid map key in Kubernetes) without touching prototypes', () => {
    const evil = JSON.parse('{"data": {"__proto__": {"polluted": true}, "k": "v"}}');
    for (const patched of [mergePatch({ data: {} }, evil), strategicMerge({ data: {} }, evil), jsonPatch({ data: {} }, [{ op: 'add', path: '/data/__proto__', value: { polluted: true } }])]) {
      const data = (patched as { data: Record<string, unknown> }).data;
      expect(Object.keys(data)).toContain('__proto__');
      expect(Object.keys(Object.getPrototypeOf(data))).toEqual([]);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    }
  });

  it('applies RFC 6902 operations and fails a test operation that does not hold', () => {
    const doc = { data: { a: '1' }, list: [1, 2] };
    expect(jsonPatch(doc, [{ op: 'add', path: '/list/-', value: 3 }, { op: 'move', from: '/data/a', path: '/data/b' }, { op: 'replace', path: '/list/0', value: 0 }])).toEqual({ data: { b: '1' }, list: [0, 2, 3] });
    expect(() => jsonPatch(doc, [{ op: 'test', path: '/data/a', value: '2' }])).toThrow(KubeStatusError);
  });
});
