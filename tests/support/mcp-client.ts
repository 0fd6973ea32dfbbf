import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

export interface ToolAnswer {
  readonly isError: boolean;
  readonly text: string;
  /** The text parsed as JSON (successful calls), else undefined. */
  readonly json: any;
}

/** The official MCP SDK client over Streamable HTTP, presenting `token` as its bearer token. */
export async function mcpClient(url: string, token: string, name = 'test-agent', version = '1.0.0'): Promise<Client> {
  const client = new Client({ name, version });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

/** Calls a tool and reads its one text content. */
export async function callTool(client: Client, name: string, args: Record<string, unknown>): Promise<ToolAnswer> {
  const r = await client.callTool({ name, arguments: args });
  const text = (r.content as { type: string; text: string }[]).map((c) => c.text).join('');
  let json: unknown;
  if (!r.isError) json = JSON.parse(text);
  return { isError: r.isError === true, text, json };
}

/** Ends the MCP session as a client that says goodbye does (HTTP DELETE), then closes the client. */
export async function endSession(client: Client): Promise<void> {
  await (client.transport as StreamableHTTPClientTransport).terminateSession();
  await client.close();
}

/** The MCP URL of a test agent started with an `mcp` section. */
export function agentMcpUrl(agent: { readonly mcp: { readonly endpoint: string } | undefined }): string {
  if (!agent.mcp) throw new Error('the stack was started without mcp');
  return `http://${agent.mcp.endpoint}/mcp`;
}

/** SDK clients a test suite opens as callers of one stack (each with a fresh token), closed together after it. */
export class McpCallers {
  private readonly clients: { close(): Promise<void> }[] = [];

  constructor(private readonly stack: { mcpUrl(): string; token(user: string, groups: string[]): Promise<string> }) {}

  async connect(user: string, groups: string[], name?: string, version?: string): Promise<Client> {
    return this.adopt(await mcpClient(this.stack.mcpUrl(), await this.stack.token(user, groups), name, version));
  }

  /** Closes a client the suite connected another way (the stdio bridge) with the others. */
  adopt<C extends { close(): Promise<void> }>(client: C): C {
    this.clients.push(client);
    return client;
  }

  closeAll(): Promise<void[]> {
    return Promise.all(this.clients.map((c) => c.close()));
  }
}
