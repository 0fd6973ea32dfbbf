import { issuerDiscovery, issuerJwks } from './domain/token-issuer';
import { httpRoute, json } from './shared/http';
import { getRuntime } from './shared/runtime';

/** Agents refetch keys on an unknown kid; a short cache spares the function the rest. */
const KEYS_CACHE_SECONDS = 300;
const cached = { 'cache-control': `public, max-age=${KEYS_CACHE_SECONDS}` };

/** GET /tokens/.well-known/openid-configuration: the discovery document of the control plane's own tokens. */
export const discovery = httpRoute('token-issuer', getRuntime, async (_event, rt) => json(200, issuerDiscovery(rt.deps), cached));

/** GET /tokens/jwks.json: the public key those tokens verify with. */
export const jwks = httpRoute('token-issuer', getRuntime, async (_event, rt) => json(200, await issuerJwks(rt.deps), cached));
