import type { Identity } from '../../../core/identity/identity';
import type { Logger } from '../../../core/log';
import { MaskingProfile, sameMasks } from '../../../core/masking/profile';
import type { PolicyMask } from '../../../core/policy/schema';
import type { UpstreamOptions } from '../upstream/connect';
import { querySimple } from '../upstream/simple-query';
import { PgCatalog } from './catalog';

const MAX_CACHED_PROFILES = 1_000;

/** What a session needs for masking: the subject's compiled masks and the catalog of its database. */
export interface SessionMasking {
  profileFor(identity: Identity): MaskingProfile | undefined;
  catalogFor(database: string): PgCatalog;
  /** DDL ran on a database: its catalog is reloaded before masking uses it again. */
  invalidate(database: string): void;
}

/**
 * Masking for one Postgres target: compiled profiles per subject (rebuilt when the policy's masks or
 * the deployment's hash key change) and one catalog per database, read on the read credential.
 */
export class PgMaskingService implements SessionMasking {
  private readonly profiles = new Map<string, MaskingProfile>();
  private readonly catalogs = new Map<string, PgCatalog>();
  private profileKey: Buffer | undefined;

  constructor(
    private readonly target: string,
    private readonly masksFor: (identity: Identity, target: string) => readonly PolicyMask[],
    private readonly hashKey: () => Buffer | undefined,
    private readonly connection: (database: string) => UpstreamOptions,
    private readonly log: Logger,
  ) {}

  profileFor(identity: Identity): MaskingProfile | undefined {
    const masks = this.masksFor(identity, this.target);
    if (masks.length === 0) return undefined;
    const key = this.hashKey();
    if (key !== this.profileKey) {
      this.profiles.clear();
      this.profileKey = key;
    }
    const id = masks.map((m) => m.name).join('\0');
    const cached = this.profiles.get(id);
    if (cached && sameMasks(cached.masks, masks)) return cached;
    if (this.profiles.size >= MAX_CACHED_PROFILES) this.profiles.clear();
    const profile = new MaskingProfile(masks, key);
    this.profiles.set(id, profile);
    return profile;
  }

  invalidate(database: string): void {
    this.catalogs.get(database)?.invalidate();
  }

  catalogFor(database: string): PgCatalog {
    let catalog = this.catalogs.get(database);
    if (!catalog) {
      catalog = new PgCatalog((sql) => querySimple(this.connection(database), sql), this.log);
      this.catalogs.set(database, catalog);
    }
    return catalog;
  }
}
