import { utils, type AuthContext, type PublicKeyAuthContext } from 'ssh2';
import type { Identity } from '../../core/identity/identity';
import type { Result } from '../../core/result';
import type { TokenRejectedError } from '../../core/identity/verifier';

/** Attempts one connection may make (each method try counts; OpenSSH's own MaxAuthTries is 6). */
export const MAX_AUTH_ATTEMPTS = 6;
/**
 * The keyboard-interactive prompt. It names the password because `sshpass` answers only prompts
 * containing "assword", and `SSH_ASKPASS` programs show it as is.
 */
export const TOKEN_PROMPT = 'Password (twokey token): ';
const METHODS = ['publickey', 'keyboard-interactive', 'password'] as const;

/** Keys callers registered through the control plane (agent/ssh/registered-keys.ts), by algorithm and blob. */
export interface RegisteredKeyLookup {
  lookup(publicKeyAlgo: string, publicKeyBlob: Buffer, now?: number): Identity | undefined;
}

export interface CallerAuthDeps {
  verifyToken(token: string): Promise<Result<Identity, TokenRejectedError>>;
  readonly keys: RegisteredKeyLookup | undefined;
}

/** How a caller proved who they are (recorded with the session). */
export type AuthMethod = 'token' | 'publickey';

/**
 * The caller side of SSH user authentication (RFC 4252) for one connection: an OIDC token as the
 * password or the keyboard-interactive answer, or a registered public key with a valid signature.
 * Every other method is refused; `onIdentity` is called once, on success.
 */
export class CallerAuthenticator {
  private attempts = 0;
  private done = false;

  constructor(
    private readonly deps: CallerAuthDeps,
    private readonly onIdentity: (identity: Identity, method: AuthMethod) => void,
    private readonly onTooMany: () => void,
  ) {}

  handle(ctx: AuthContext): void {
    if (this.done) return ctx.reject();
    if (ctx.method !== 'none' && ++this.attempts > MAX_AUTH_ATTEMPTS) {
      ctx.reject();
      return this.onTooMany();
    }
    const methods = this.deps.keys ? [...METHODS] : METHODS.filter((m) => m !== 'publickey');
    switch (ctx.method) {
      case 'password':
        return this.token(ctx, ctx.password, methods);
      case 'keyboard-interactive':
        return ctx.prompt([{ prompt: TOKEN_PROMPT, echo: false }], (answers) => this.token(ctx, answers[0] ?? '', methods));
      case 'publickey':
        return this.publicKey(ctx, methods);
      default:
        return ctx.reject(methods);
    }
  }

  private token(ctx: AuthContext, token: string, methods: AuthContext['method'][]): void {
    void this.deps.verifyToken(token.trim()).then(
      (verified) => (verified.ok ? this.accept(ctx, verified.value, 'token') : ctx.reject(methods)),
      () => ctx.reject(methods),
    );
  }

  private publicKey(ctx: PublicKeyAuthContext, methods: AuthContext['method'][]): void {
    const identity = this.deps.keys?.lookup(ctx.key.algo, ctx.key.data);
    if (!identity) return ctx.reject(methods);
    // Without a signature the client only asks whether the key would do (RFC 4252 section 7).
    if (!ctx.signature || !ctx.blob) return ctx.accept();
    const key = utils.parseKey(ctx.key.data);
    const parsed = key instanceof Error ? undefined : Array.isArray(key) ? key[0] : key;
    // verify() returns an Error (truthy) for a malformed signature: only `true` proves the key.
    if (parsed?.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(methods);
    this.accept(ctx, identity, 'publickey');
  }

  private accept(ctx: AuthContext, identity: Identity, method: AuthMethod): void {
    if (this.done) return ctx.reject();
    this.done = true;
    ctx.accept();
    this.onIdentity(identity, method);
  }
}
