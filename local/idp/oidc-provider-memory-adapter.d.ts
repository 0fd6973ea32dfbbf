declare module 'oidc-provider/lib/adapters/memory_adapter.js' {
  import type { Adapter } from 'oidc-provider';
  /** One in-memory store, shared by every provider built with the factory it returns. */
  export function createMemoryAdapter(clockTolerance?: number): (model: string) => Adapter;
}
