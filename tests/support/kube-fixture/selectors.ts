import { field, labelsOf, metadataOf, text, type JsonObject } from './json';
import type { ResourceKind } from './kinds';
import { badRequest } from './status';

type Requirement = (labels: Record<string, string>) => boolean;

const SET_TERM = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/;
const EQUALITY_TERM = /^([\w./-]+)\s*(==|!=|=)\s*([\w.-]*)$/;
const EXISTS_TERM = /^(!?)([\w./-]+)$/;

/** Splits on commas that are not inside a `( ... )` value set. */
function terms(selector: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth += 1;
    if (ch === ')') depth -= 1;
    if (ch === ',' && depth === 0) {
      out.push(current.trim());
      current = '';
    } else current += ch;
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

/** A label selector (`a=b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`) as a predicate. */
export function parseLabelSelector(selector: string | null): Requirement {
  if (!selector) return () => true;
  const requirements = terms(selector).map((term): Requirement => {
    const set = SET_TERM.exec(term);
    if (set) {
      const [, key = '', op, values = ''] = set;
      const allowed = new Set(values.split(',').map((v) => v.trim()));
      return op === 'in' ? (l) => l[key] !== undefined && allowed.has(l[key]) : (l) => l[key] === undefined || !allowed.has(l[key]);
    }
    const eq = EQUALITY_TERM.exec(term);
    if (eq) {
      const [, key = '', op, value = ''] = eq;
      return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
    }
    const exists = EXISTS_TERM.exec(term);
    if (exists) {
      const [, not, key = ''] = exists;
      return not ? (l) => l[key] === undefined : (l) => l[key] !== undefined;
    }
    throw badRequest(`unable to parse requirement: found '${term}', expected: in, notin, =, ==, !=, gt, lt`);
  });
  return (labels) => requirements.every((r) => r(labels));
}

/** Field labels each kind supports in field selectors (the registry's GetAttrs), beyond metadata.name/namespace. */
const FIELD_LABELS: Record<string, Record<string, (o: JsonObject) => string>> = {
  pods: {
    'spec.nodeName': (o) => text(field(o, 'spec').nodeName) ?? '',
    'spec.restartPolicy': (o) => text(field(o, 'spec').restartPolicy) ?? '',
    'spec.serviceAccountName': (o) => text(field(o, 'spec').serviceAccountName) ?? '',
    'status.phase': (o) => text(field(o, 'status').phase) ?? '',
    'status.podIP': (o) => text(field(o, 'status').podIP) ?? '',
  },
  secrets: { type: (o) => text(o.type) ?? '' },
  namespaces: { 'status.phase': (o) => text(field(o, 'status').phase) ?? '' },
  events: Object.fromEntries(['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath'].map((f) => [`involvedObject.${f}`, (o: JsonObject) => text(field(o, 'involvedObject')[f]) ?? ''])),
};

/** A field selector (`metadata.name=x,status.phase!=Running`) as a predicate; unknown labels are a 400. */
export function parseFieldSelector(k: ResourceKind, selector: string | null): (o: JsonObject) => boolean {
  if (!selector) return () => true;
  const labels: Record<string, (o: JsonObject) => string> = {
    'metadata.name': (o) => text(metadataOf(o).name) ?? '',
    'metadata.namespace': (o) => text(metadataOf(o).namespace) ?? '',
    ...FIELD_LABELS[k.resource],
  };
  const checks = terms(selector).map((term) => {
    const m = /^([\w.-]+)\s*(==|!=|=)\s*(.*)$/.exec(term);
    if (!m) throw badRequest(`invalid selector: '${selector}'; can't understand '${term}'`);
    const [, label = '', op, value = ''] = m;
    const read = labels[label];
    if (!read) throw badRequest(`field label not supported: ${label}`);
    return (o: JsonObject) => (op === '!=' ? read(o) !== value : read(o) === value);
  });
  return (o) => checks.every((c) => c(o));
}

export const matchesLabels = (selector: Requirement, o: JsonObject): boolean => selector(labelsOf(o));
