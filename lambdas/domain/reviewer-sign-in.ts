import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { ApprovalRecord } from '../../core/approval/request';
import { entriesOf, type Reviewer } from '../../core/approval/reviewers';
import { fetchJson } from '../../core/identity/fetch-json';
import { principalKey } from '../../core/identity/identity';
import { TokenVerifier } from '../../core/identity/verifier';
import { messagePage, type ReviewSignIn } from './approval-page';
import type { PageResult } from './approvals';
import type { ControlPlaneDeps } from './deps';
import { ForbiddenError, InvalidRequestError, NotFoundError } from './errors';
import { parseStoredPolicy } from './policies';
import type { PolicyStore } from '../store/stores';

/** A reviewer's sign-in lasts this long on the review pages; the IdP round trip must finish within the second. */
export const REVIEWER_SESSION_SECONDS = 15 * 60;
export const SIGN_IN_ROUND_TRIP_SECONDS = 10 * 60;
export const REVIEWER_COOKIE = 'twokey_reviewer';
export const SIGN_IN_COOKIE = 'twokey_signin';
const COOKIE_PATH = '/approvals';
const MAX_COOKIE_CHARS = 4096;
const IDP_HTTP_TIMEOUT_MS = 5_000;

/**
 * The OpenID provider reviewers sign in with (REVIEWER_OIDC, JSON); the control plane is its client.
 * A confidential client's secret is in Secrets Manager (deps.reviewerClientSecret), never here.
 */
export const reviewerOidcSchema = z.strictObject({
  issuer: z.string().url(),
  clientId: z.string().min(1),
});
export type ReviewerOidcConfig = z.infer<typeof reviewerOidcSchema>;

export interface ReviewerSession {
  readonly iss: string;
  readonly sub: string;
  readonly email: string | undefined;
  readonly exp: number;
}

/** HMAC-sealed cookie values under the link key: the reviewer session and the sign-in round trip live only in the browser. */
function seal(value: unknown, key: Buffer, purpose: string): string {
  const body = Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${body}.${createHmac('sha256', key).update(`${purpose}.${body}`).digest('base64url')}`;
}

function unseal<T>(sealed: string | undefined, key: Buffer, purpose: string, nowMs: number): T | undefined {
  if (!sealed || sealed.length > MAX_COOKIE_CHARS) return undefined;
  const [body, mac, extra] = sealed.split('.');
  if (!body || !mac || extra !== undefined) return undefined;
  const expected = createHmac('sha256', key).update(`${purpose}.${body}`).digest();
  const given = Buffer.from(mac, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  const value = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as T & { exp?: unknown };
  return typeof value.exp === 'number' && value.exp * 1000 > nowMs ? value : undefined;
}

export function cookieValue(cookies: readonly string[] | undefined, name: string): string | undefined {
  for (const c of cookies ?? []) if (c.startsWith(`${name}=`)) return c.slice(name.length + 1);
  return undefined;
}

function cookie(deps: Pick<ControlPlaneDeps, 'publicUrl'>, name: string, value: string, maxAgeSeconds: number): string {
  const secure = deps.publicUrl.startsWith('https:') ? '; Secure' : '';
  return `${name}=${value}; Path=${COOKIE_PATH}; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${secure}`;
}

/**
 * Whether the reviewer's vote on this request counts only once signed in: a group of the request that
 * the policy marks and whose directory entries hold the reviewer's principal. A reviewer no longer in
 * any of the request's groups (the directory changed since) signs in when any of them is marked.
 */
export async function signInRequired(deps: { readonly policies: Pick<PolicyStore, 'latest'> }, record: ApprovalRecord, reviewer: Reviewer): Promise<boolean> {
  const stored = await deps.policies.latest();
  const parsed = stored ? parseStoredPolicy(stored) : undefined;
  if (!parsed?.ok) return true; // fail closed: without a policy we cannot tell that sign-in is not needed
  const marked = new Set(parsed.value.reviewerSignIn ?? []);
  const key = principalKey(reviewer);
  const own = record.approval.groups.filter((g) => entriesOf(parsed.value, [g]).some((e) => principalKey(e) === key));
  return (own.length > 0 ? own : record.approval.groups).some((g) => marked.has(g));
}

/** The signed-in reviewer from the session cookie, if any (not yet compared with a link's reviewer). */
export async function signedInReviewer(deps: Pick<ControlPlaneDeps, 'linkKey' | 'clock'>, cookies: readonly string[] | undefined): Promise<ReviewerSession | undefined> {
  return unseal<ReviewerSession>(cookieValue(cookies, REVIEWER_COOKIE), await deps.linkKey(), REVIEWER_COOKIE, deps.clock().getTime());
}

/**
 * The link's reviewer is the signed-in person when the IdP names the same principal (issuer and
 * subject) as the link's directory entry. An address, even a verified one, is not enough: it proves a
 * mailbox, and the directory ties each mailbox to one principal only for the links it sends.
 */
export function isLinkReviewer(session: ReviewerSession, reviewer: Pick<Reviewer, 'issuer' | 'subject'>): boolean {
  return principalKey({ issuer: session.iss, subject: session.sub }) === principalKey(reviewer);
}

/** How the page names a signed-in person: their verified address, else subject at issuer. */
const signedInName = (session: ReviewerSession): string => session.email ?? `${session.sub} at ${session.iss}`;

/** What the review page shows about sign-in, or undefined when the reviewer's groups do not require it. */
export async function reviewSignIn(deps: ControlPlaneDeps, record: ApprovalRecord, reviewer: Reviewer, token: string, cookies: readonly string[] | undefined): Promise<ReviewSignIn | undefined> {
  if (!(await signInRequired(deps, record, reviewer))) return undefined;
  const session = await signedInReviewer(deps, cookies);
  return { signedInAs: session && signedInName(session), url: `${deps.publicUrl}/approvals/sign-in?t=${encodeURIComponent(token)}` };
}

/** The page that refuses a vote needing sign-in: nobody signed in, or someone other than the link's reviewer. */
export async function signInRefusal(deps: ControlPlaneDeps, record: ApprovalRecord, reviewer: Reviewer, cookies: readonly string[] | undefined): Promise<PageResult | undefined> {
  if (!(await signInRequired(deps, record, reviewer))) return undefined;
  const session = await signedInReviewer(deps, cookies);
  if (!session) return { status: 401, html: messagePage('Sign in to vote', 'Votes of this reviewer group count only from a signed-in reviewer. Nothing was changed.') };
  if (!isLinkReviewer(session, reviewer)) {
    deps.log.warn('reviewer.sign-in.mismatch', { requestId: record.requestId, principal: principalKey({ issuer: session.iss, subject: session.sub }) });
    return { status: 403, html: messagePage('Not this link\'s reviewer', `You are signed in as ${signedInName(session)}; this link is for another reviewer. Nothing was changed.`) };
  }
  return undefined;
}

interface SignInState {
  readonly state: string;
  readonly verifier: string;
  readonly nonce: string;
  readonly t: string;
  readonly exp: number;
}

interface ProviderEndpoints {
  readonly authorization_endpoint: string;
  readonly token_endpoint: string;
}

async function endpoints(issuer: string): Promise<ProviderEndpoints> {
  const doc = (await fetchJson(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`)) as Partial<ProviderEndpoints> & { issuer?: unknown };
  if (doc.issuer !== issuer || typeof doc.authorization_endpoint !== 'string' || typeof doc.token_endpoint !== 'string') throw new Error('discovery document does not match issuer');
  return doc as ProviderEndpoints;
}

const callbackUrl = (deps: Pick<ControlPlaneDeps, 'publicUrl'>): string => `${deps.publicUrl}/approvals/sign-in/callback`;

function requireConfig(config: ReviewerOidcConfig | undefined): ReviewerOidcConfig {
  if (!config) throw new NotFoundError('reviewer sign-in is not configured');
  return config;
}

/** GET /approvals/sign-in?t=...: to the IdP (authorization code + PKCE), the round trip's secrets in a sealed cookie. */
export async function startReviewerSignIn(deps: ControlPlaneDeps, config: ReviewerOidcConfig | undefined, linkToken: string): Promise<{ location: string; cookie: string }> {
  const oidc = requireConfig(config);
  if (!linkToken || linkToken.length > MAX_COOKIE_CHARS / 2) throw new InvalidRequestError('no approval link');
  const round: SignInState = {
    state: randomBytes(18).toString('base64url'),
    verifier: randomBytes(32).toString('base64url'),
    nonce: randomBytes(18).toString('base64url'),
    t: linkToken,
    exp: Math.floor(deps.clock().getTime() / 1000) + SIGN_IN_ROUND_TRIP_SECONDS,
  };
  const url = new URL((await endpoints(oidc.issuer)).authorization_endpoint);
  const params = {
    response_type: 'code',
    client_id: oidc.clientId,
    redirect_uri: callbackUrl(deps),
    scope: 'openid email profile',
    state: round.state,
    nonce: round.nonce,
    code_challenge: createHash('sha256').update(round.verifier).digest('base64url'),
    code_challenge_method: 'S256',
    prompt: 'login',
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return { location: url.toString(), cookie: cookie(deps, SIGN_IN_COOKIE, seal(round, await deps.linkKey(), SIGN_IN_COOKIE), SIGN_IN_ROUND_TRIP_SECONDS) };
}

/**
 * GET /approvals/sign-in/callback: the code for an ID token (verified for signature, issuer,
 * audience = our client, expiry, and this round trip's nonce), kept as a sealed reviewer session.
 * Back to the review page, where the vote is then compared with the link's reviewer.
 */
export async function finishReviewerSignIn(
  deps: ControlPlaneDeps,
  config: ReviewerOidcConfig | undefined,
  query: Record<string, string | undefined>,
  cookies: readonly string[] | undefined,
): Promise<{ location: string; cookies: string[] }> {
  const oidc = requireConfig(config);
  const key = await deps.linkKey();
  const round = unseal<SignInState>(cookieValue(cookies, SIGN_IN_COOKIE), key, SIGN_IN_COOKIE, deps.clock().getTime());
  if (!round || !query.state || query.state !== round.state) throw new ForbiddenError('the sign-in does not belong to this browser or took too long');
  if (query.iss !== undefined && query.iss !== oidc.issuer) throw new ForbiddenError('the sign-in answer came from another issuer');
  if (!query.code) throw new ForbiddenError('the identity provider did not sign you in');
  const form = new URLSearchParams({ grant_type: 'authorization_code', code: query.code, redirect_uri: callbackUrl(deps), code_verifier: round.verifier });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  const clientSecret = await deps.reviewerClientSecret?.();
  if (clientSecret) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(oidc.clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
  else form.set('client_id', oidc.clientId);
  const res = await fetch((await endpoints(oidc.issuer)).token_endpoint, { method: 'POST', headers, body: form, redirect: 'error', signal: AbortSignal.timeout(IDP_HTTP_TIMEOUT_MS) });
  const body = (await res.json().catch(() => ({}))) as { id_token?: unknown };
  if (!res.ok || typeof body.id_token !== 'string') {
    deps.log.warn('reviewer.sign-in.refused', { status: res.status });
    throw new ForbiddenError('the identity provider did not sign you in');
  }
  const verified = await new TokenVerifier([{ issuer: oidc.issuer, audience: oidc.clientId }], { fetchJson, nowMs: () => deps.clock().getTime() }).verify(body.id_token);
  const nonce = verified.ok ? (JSON.parse(Buffer.from(body.id_token.split('.')[1] ?? '', 'base64url').toString()) as { nonce?: unknown }).nonce : undefined;
  if (!verified.ok || nonce !== round.nonce) {
    deps.log.warn('reviewer.sign-in.refused', { reason: verified.ok ? 'nonce' : verified.error.reason });
    throw new ForbiddenError('the identity provider did not sign you in');
  }
  const session: ReviewerSession = {
    iss: verified.value.issuer,
    sub: verified.value.subject,
    email: verified.value.email?.toLowerCase(),
    exp: Math.floor(deps.clock().getTime() / 1000) + REVIEWER_SESSION_SECONDS,
  };
  deps.log.info('reviewer.signed-in', { principal: principalKey({ issuer: session.iss, subject: session.sub }) });
  return {
    location: `${deps.publicUrl}/approvals/review?t=${encodeURIComponent(round.t)}`,
    cookies: [cookie(deps, REVIEWER_COOKIE, seal(session, key, REVIEWER_COOKIE), REVIEWER_SESSION_SECONDS), cookie(deps, SIGN_IN_COOKIE, '', 0)],
  };
}
