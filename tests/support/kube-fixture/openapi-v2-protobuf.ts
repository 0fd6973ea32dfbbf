import { stringify as toYaml } from 'yaml';
import { isObject, list, text, type Json, type JsonObject } from './json';

/**
 * `/openapi/v2` in the protobuf form kubectl up to 1.28 asks for (gnostic's openapi_v2.Document,
 * github.com/google/gnostic-models/openapiv2/OpenAPIv2.proto): the same document the JSON form
 * carries, with vendor extensions as YAML in `Any`, as kube-apiserver encodes them. It is served as
 * `application/octet-stream` (the media type's `@` is not one Go's MIME parser accepts).
 */
export const OPENAPI_V2_PROTOBUF = 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf';
/** The other spelling of the same media type that kube-apiserver also answers. */
export const OPENAPI_V2_PROTOBUF_ALT = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';

const LENGTH_DELIMITED = 2;
const VARINT = 0;

function varint(value: number): Buffer {
  const out: number[] = [];
  let v = value;
  while (v > 0x7f) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

const key = (field: number, wire: number): Buffer => varint(field * 8 + wire);
const bytes = (field: number, value: Buffer): Buffer => Buffer.concat([key(field, LENGTH_DELIMITED), varint(value.length), value]);
const str = (field: number, value: string | undefined): Buffer => (value ? bytes(field, Buffer.from(value, 'utf8')) : Buffer.alloc(0));
const strs = (field: number, values: Json | undefined): Buffer => Buffer.concat(list(values).map((v) => str(field, String(v))));
const bool = (field: number, value: boolean | undefined): Buffer => (value ? Buffer.concat([key(field, VARINT), varint(1)]) : Buffer.alloc(0));
const message = (field: number, value: Buffer | undefined): Buffer => (value ? bytes(field, value) : Buffer.alloc(0));
const named = (name: string, value: Buffer): Buffer => Buffer.concat([str(1, name), bytes(2, value)]);

/** Vendor extensions (`x-...`) as NamedAny entries whose Any holds the value as YAML. */
function extensions(field: number, o: JsonObject): Buffer {
  return Buffer.concat(Object.entries(o).filter(([k]) => k.startsWith('x-')).map(([k, v]) => bytes(field, named(k, str(2, toYaml(v))))));
}

function schema(o: JsonObject): Buffer {
  const props = isObject(o.properties) ? o.properties : undefined;
  return Buffer.concat([
    str(1, text(o.$ref)),
    str(2, text(o.format)),
    str(4, text(o.description)),
    strs(19, o.required),
    message(21, isObject(o.additionalProperties) ? bytes(1, schema(o.additionalProperties)) : undefined),
    message(22, text(o.type) ? str(1, text(o.type)) : undefined),
    message(23, isObject(o.items) ? bytes(1, schema(o.items)) : undefined),
    message(25, props ? Buffer.concat(Object.entries(props).map(([k, v]) => bytes(1, named(k, schema(isObject(v) ? v : {}))))) : undefined),
    extensions(31, o),
  ]);
}

function parameter(p: JsonObject): Buffer {
  if (p.in === 'body') return bytes(1, bytes(1, Buffer.concat([str(1, text(p.description)), str(2, text(p.name)), str(3, 'body'), bool(4, p.required === true), message(5, isObject(p.schema) ? schema(p.schema) : undefined)])));
  const common = (typeField: number, uniqueField: number): Buffer => Buffer.concat([bool(1, p.required === true), str(2, text(p.in)), str(3, text(p.description)), str(4, text(p.name)), str(typeField, text(p.type)), bool(uniqueField, p.uniqueItems === true)]);
  const sub = p.in === 'path' ? bytes(4, common(5, 19)) : bytes(3, common(6, 20));
  return bytes(1, bytes(2, sub));
}

function operation(o: JsonObject): Buffer {
  const responses = Object.entries(isObject(o.responses) ? o.responses : {}).map(([code, r]) => {
    const response = isObject(r) ? r : {};
    const body = Buffer.concat([str(1, text(response.description)), message(2, isObject(response.schema) ? bytes(1, schema(response.schema)) : undefined)]);
    return bytes(1, named(code, bytes(1, body)));
  });
  return Buffer.concat([
    strs(1, o.tags),
    str(3, text(o.description)),
    str(5, text(o.operationId)),
    strs(6, o.produces),
    strs(7, o.consumes),
    ...list(o.parameters).filter(isObject).map((p) => bytes(8, parameter(p))),
    message(9, Buffer.concat(responses)),
    strs(10, o.schemes),
    extensions(13, o),
  ]);
}

const PATH_ITEM_FIELDS: Record<string, number> = { get: 2, put: 3, post: 4, delete: 5, patch: 8 };

function pathItem(item: JsonObject): Buffer {
  const ops = Object.entries(PATH_ITEM_FIELDS).map(([verb, field]) => message(field, isObject(item[verb]) ? operation(item[verb]) : undefined));
  return Buffer.concat([...ops, ...list(item.parameters).filter(isObject).map((p) => bytes(9, parameter(p)))]);
}

/** Encodes a Swagger 2.0 document (as `openApiV2()` builds it) into gnostic's protobuf Document. */
export function encodeOpenApiV2(doc: JsonObject): Buffer {
  const info = isObject(doc.info) ? doc.info : {};
  const paths = Object.entries(isObject(doc.paths) ? doc.paths : {}).map(([p, item]) => bytes(2, named(p, pathItem(isObject(item) ? item : {}))));
  const definitions = Object.entries(isObject(doc.definitions) ? doc.definitions : {}).map(([n, d]) => bytes(1, named(n, schema(isObject(d) ? d : {}))));
  const securityDefinitions = Object.entries(isObject(doc.securityDefinitions) ? doc.securityDefinitions : {}).map(([n, d]) => {
    const s = isObject(d) ? d : {};
    return bytes(1, named(n, bytes(2, Buffer.concat([str(1, text(s.type)), str(2, text(s.name)), str(3, text(s.in)), str(4, text(s.description))]))));
  });
  const security = list(doc.security).filter(isObject).map((requirement) => bytes(12, Buffer.concat(Object.entries(requirement).map(([n, scopes]) => bytes(1, named(n, strs(1, scopes)))))));
  return Buffer.concat([str(1, text(doc.swagger)), bytes(2, Buffer.concat([str(1, text(info.title)), str(2, text(info.version))])), bytes(8, Buffer.concat(paths)), bytes(9, Buffer.concat(definitions)), ...security, bytes(13, Buffer.concat(securityDefinitions))]);
}
