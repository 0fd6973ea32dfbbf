import { stringify as toYaml } from 'yaml';
import { field, isObject, metadataOf, objects, type JsonObject } from './json';
import type { ResourceKind } from './kinds';
import type { Rendering } from './negotiation';
import { tableFor } from './tables';

const TABLE_KIND = { kind: 'Table' };

function partialMetadata(o: JsonObject, version: string): JsonObject {
  return { kind: 'PartialObjectMetadata', apiVersion: `meta.k8s.io/${version}`, metadata: metadataOf(o) };
}

/** One `Table` for objects of kind `k` (a list or a single object; watch events carry one row each). */
export function toTable(k: ResourceKind, items: JsonObject[], listMeta: JsonObject, rendering: Extract<Rendering, { form: 'table' }>, now: number, withColumns = true): JsonObject {
  const shape = tableFor(k.resource);
  const rows = items.map((o) => {
    const row: JsonObject = { cells: shape.cells(o, now) };
    if (rendering.includeObject === 'Metadata') row.object = partialMetadata(o, rendering.version);
    if (rendering.includeObject === 'Object') row.object = o;
    return row;
  });
  return { ...TABLE_KIND, apiVersion: `meta.k8s.io/${rendering.version}`, metadata: listMeta, columnDefinitions: withColumns ? shape.columns.map((c) => ({ ...c })) : null, rows };
}

/** List items are written without their kind and apiVersion (the list names them once). */
const untyped = (o: JsonObject): JsonObject => {
  const { kind: _kind, apiVersion: _apiVersion, ...rest } = o;
  return rest;
};

/** Renders a handler's value (object, list or Status) as the negotiated representation. */
export function renderValue(k: ResourceKind, value: JsonObject, isList: boolean, rendering: Rendering, now: number): JsonObject {
  if (value.kind === 'Status') return value;
  if (rendering.form === 'table') {
    const items = isList ? objects(value.items) : [value];
    const listMeta = isList ? field(value, 'metadata') : { resourceVersion: metadataOf(value).resourceVersion ?? '' };
    return toTable(k, items, listMeta, rendering, now);
  }
  if (rendering.form === 'metadata') {
    if (!isList) return partialMetadata(value, rendering.version);
    return { kind: 'PartialObjectMetadataList', apiVersion: `meta.k8s.io/${rendering.version}`, metadata: field(value, 'metadata'), items: objects(value.items).map((o) => ({ metadata: metadataOf(o) })) };
  }
  return isList ? { ...value, items: objects(value.items).map(untyped) } : value;
}

export function encode(value: JsonObject, encoding: 'json' | 'yaml'): { body: string; contentType: string } {
  return encoding === 'yaml' ? { body: toYaml(value), contentType: 'application/yaml' } : { body: `${JSON.stringify(value)}\n`, contentType: 'application/json' };
}

export const isStatus = (value: unknown): boolean => isObject(value) && value.kind === 'Status';
