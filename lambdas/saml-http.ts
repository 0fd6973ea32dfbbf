import { samlAssertionConsumer, samlLoginUrl, samlMetadata } from './domain/saml';
import { bodyText, httpRoute, json } from './shared/http';
import { getRuntime } from './shared/runtime';

/** GET /saml/metadata: this service provider's metadata (entity id, ACS) for the IdP's configuration. */
export const metadata = httpRoute('saml', getRuntime, async (_event, rt) => ({
  statusCode: 200,
  headers: { 'content-type': 'application/samlmetadata+xml', 'cache-control': 'no-store' },
  body: samlMetadata(rt.deps, rt.config.samlIdp),
}));

/** GET /saml/login[?RelayState=loopback URL]: redirects the browser to the IdP with a fresh AuthnRequest. */
export const login = httpRoute('saml', getRuntime, async (event, rt) => ({
  statusCode: 302,
  headers: { location: await samlLoginUrl(rt.deps, rt.config.samlIdp, event.queryStringParameters?.RelayState), 'cache-control': 'no-store' },
  body: '',
}));

/** POST /saml/acs: the IdP's response (HTTP-POST binding) for a twokey token; to the CLI's loopback listener when it asked. */
export const acs = httpRoute('saml', getRuntime, async (event, rt) => {
  const signIn = await samlAssertionConsumer(rt.deps, rt.config.samlIdp, new URLSearchParams(bodyText(event)));
  if (signIn.returnTo) {
    signIn.returnTo.searchParams.set('token', signIn.token);
    return { statusCode: 303, headers: { location: signIn.returnTo.toString(), 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' }, body: '' };
  }
  return json(200, { token: signIn.token, expiresIn: signIn.expiresIn, subject: signIn.subject });
});
