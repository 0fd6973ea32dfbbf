import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

/** `DIR/dev.json`: where a running `twokey dev` can be reached. CLI commands read it. */
export interface DevInfo {
  readonly controlPlane: { httpUrl: string; wsUrl: string };
  readonly issuer: string;
  readonly outboxDir: string;
  readonly targets: Record<string, { protocol: string; endpoint: string | null; adminUrl?: string; database?: string }>;
  readonly pid: number;
  /** The agent's MCP endpoint (`twokey mcp` bridges to it). */
  readonly mcp?: { readonly url: string };
  /** With `--idp oidc`: the local OpenID provider `twokey login` uses by default. */
  readonly idp?: { readonly issuer: string; readonly clientId: string; readonly resource?: string };
  /** With `--slack`: the Slack stand-in's page, where its messages' buttons are pressed. */
  readonly slack?: { readonly viewer: string };
}

export const DEV_INFO_FILE = 'dev.json';
export const DEFAULT_DATA_DIR = '.twokey';

export async function readDevInfo(dataDir: string): Promise<DevInfo> {
  try {
    return JSON.parse(await readFile(join(dataDir, DEV_INFO_FILE), 'utf8')) as DevInfo;
  } catch {
    throw new Error(`no ${DEV_INFO_FILE} in ${dataDir}: is \`twokey dev\` running? (or pass --url)`);
  }
}

/** A dev identity from examples/dev/users.yaml. */
export interface DevUser {
  readonly groups: string[];
  readonly email: string;
}

const DEV_USERS_FILE = resolve(__dirname, '..', 'examples', 'dev', 'users.yaml');

/** The dev identities (alice, bob, ...): the dev issuer's defaults, the local OpenID provider's accounts, the Slack stand-in's users. */
export function readDevUsers(): Record<string, DevUser> {
  return parseYaml(readFileSync(DEV_USERS_FILE, 'utf8')) as Record<string, DevUser>;
}
