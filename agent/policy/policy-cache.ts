import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { policySchema, type PolicyDocument } from '../../core/policy/schema';
import { err, ok, type Result } from '../../core/result';

const CACHE_FILE = 'policy.json';

export interface CachedPolicy {
  readonly version: number;
  readonly document: PolicyDocument;
}

/**
 * The agent's copy of its policy. Updates are validated, written to disk (0600, write-then-rename so a
 * crash never leaves half a file) and only then swapped in, so readers see the old or the new policy whole.
 */
export class PolicyCache {
  private current: CachedPolicy | undefined;
  private readonly listeners = new Set<(p: CachedPolicy) => void>();

  constructor(private readonly stateDir: string) {}

  get policy(): CachedPolicy | undefined {
    return this.current;
  }

  onChange(listener: (p: CachedPolicy) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Loads the last policy from disk, so that a restart without the control plane still enforces it. */
  async load(): Promise<boolean> {
    const file = join(this.stateDir, CACHE_FILE);
    if (!existsSync(file)) return false;
    const raw = JSON.parse(await readFile(file, 'utf8')) as { version?: unknown; document?: unknown };
    const parsed = policySchema.safeParse(raw.document);
    if (!parsed.success || typeof raw.version !== 'number') return false;
    this.current = { version: raw.version, document: parsed.data };
    return true;
  }

  async apply(version: number, document: unknown): Promise<Result<'applied' | 'stale', Error>> {
    if (this.current && version < this.current.version) return ok('stale');
    const parsed = policySchema.safeParse(document);
    if (!parsed.success) return err(new Error(`pushed policy ${version} is invalid: ${parsed.error.issues[0]?.message ?? ''}`));
    const next: CachedPolicy = { version, document: parsed.data };
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    const file = join(this.stateDir, CACHE_FILE);
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(next), { mode: 0o600 });
    await rename(tmp, file);
    this.current = next;
    for (const l of this.listeners) l(next);
    return ok('applied');
  }
}
