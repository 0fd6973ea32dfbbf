import type { ServerResponse } from 'node:http';

/** RFC 9728 §3: the metadata of a resource at path P lives at `/.well-known/oauth-protected-resource` + P. */
export const PROTECTED_RESOURCE_PATH = '/.well-known/oauth-protected-resource';

/** What the MCP endpoint tells a client about itself (RFC 9728 §2): who issues the tokens it takes. */
export function protectedResourceMetadata(resource: string, issuers: readonly string[]): Record<string, unknown> {
  return { resource, authorization_servers: [...issuers], bearer_methods_supported: ['header'], resource_name: 'twokey agent (MCP)' };
}

/**
 * 401 for a request without a usable token (RFC 6750 §3, with RFC 9728 §5.1's `resource_metadata`),
 * so that an MCP client that supports the authorization spec finds the issuer and signs in.
 */
export function unauthorized(res: ServerResponse, metadataUrl: string, problem: string | undefined): void {
  const error = problem === undefined ? '' : `, error="invalid_token", error_description="${problem.replace(/["\\\r\n]/g, ' ')}"`;
  res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': `Bearer resource_metadata="${metadataUrl}"${error}` });
  res.end(JSON.stringify({ error: problem === undefined ? 'twokey: a bearer token is required' : `twokey: ${problem}` }));
}
