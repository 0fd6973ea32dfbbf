/** JSON values as the API server stores and serves them. */
export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The object at `key`, or an empty one when absent or not an object (read-only use). */
export function field(object: JsonObject | undefined, key: string): JsonObject {
  const value = object?.[key];
  return isObject(value) ? value : {};
}

/** The object at `key`, created in place when absent (for defaulting). */
export function ensure(object: JsonObject, key: string): JsonObject {
  const value = object[key];
  if (isObject(value)) return value;
  const made: JsonObject = {};
  object[key] = made;
  return made;
}

/**
 * Sets a field named by the client. A plain assignment to `__proto__` would replace the object's
 * prototype; Kubernetes maps may hold that key like any other, so it is defined as an own field.
 */
export function setField(object: JsonObject, key: string, value: Json): void {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
}

export const text = (value: Json | undefined): string | undefined => (typeof value === 'string' ? value : undefined);
export const list = (value: Json | undefined): Json[] => (Array.isArray(value) ? value : []);
export const objects = (value: Json | undefined): JsonObject[] => list(value).filter(isObject);

export const clone = <T extends Json>(value: T): T => structuredClone(value);

export const metadataOf = (object: JsonObject): JsonObject => field(object, 'metadata');
export const nameOf = (object: JsonObject): string => text(metadataOf(object).name) ?? '';
export const namespaceOf = (object: JsonObject): string => text(metadataOf(object).namespace) ?? '';
export const labelsOf = (object: JsonObject): Record<string, string> => {
  // No prototype: a selector asking for a label named like an Object.prototype member finds nothing.
  const labels: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(field(metadataOf(object), 'labels'))) if (typeof v === 'string') labels[k] = v;
  return labels;
};
