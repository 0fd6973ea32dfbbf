import { loadModule } from 'libpg-query';
import { classifySql, type Classification } from './classify';
import { statementShape } from './shape';

export const MAX_SHAPE_CACHE_ENTRIES = 10_000;

let loaded: Promise<void> | undefined;

/** Loads the PostgreSQL parser (WASM) once per process. */
export function loadParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

/**
 * Classification with a cache by statement shape, so a repeated statement with other literals costs
 * no parse. Shared by every session of the process; bounded.
 */
export class StatementClassifier {
  private readonly cache = new Map<string, Classification>();
  hits = 0;
  misses = 0;

  /** `standardConformingStrings` is the session's setting: with it off, backslashes escape and shapes are not used. */
  classify(sql: string, standardConformingStrings: boolean): Classification {
    const shape = standardConformingStrings ? statementShape(sql) : undefined;
    if (shape !== undefined) {
      const cached = this.cache.get(shape);
      if (cached) {
        this.hits++;
        return cached;
      }
    }
    this.misses++;
    const result = classifySql(sql);
    if (shape !== undefined && !result.literalSensitive) {
      if (this.cache.size >= MAX_SHAPE_CACHE_ENTRIES) this.cache.clear();
      this.cache.set(shape, result);
    }
    return result;
  }
}
