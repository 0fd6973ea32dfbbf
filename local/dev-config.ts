import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { isLoopback } from '../agent/net/loopback';

/** `DIR/dev.json`: where a running `twokey dev` can be reached. CLI commands read it. */
export interface DevInfo {
  readonly controlPlane: { httpUrl: string; wsUrl: string };
  readonly issuer: string;
  readonly outboxDir: string;
  /** `dataDir`: an SSH target's directory that its write login may change. */
  readonly targets: Record<string, { protocol: string; endpoint: string | null; adminUrl?: string; database?: string; dataDir?: string }>;
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
  let info: DevInfo;
  try {
    info = JSON.parse(await readFile(join(dataDir, DEV_INFO_FILE), 'utf8')) as DevInfo;
  } catch {
    throw new Error(`no ${DEV_INFO_FILE} in ${dataDir}: is \`twokey dev\` running? (or pass --url)`);
  }
  const away = devInfoHosts(info).find((host) => !isLoopback(host));
  if (away !== undefined) throw new Error(`${join(dataDir, DEV_INFO_FILE)} names ${away}, not this machine: \`twokey dev\` serves only on loopback, so it did not write this file (pass --url)`);
  return info;
}

/**
 * The hosts a dev.json sends callers to. The CLI reads it from the working directory and sends tokens
 * there (a checked-out repository could carry one): only loopback hosts, as `twokey dev` writes, are taken.
 */
function devInfoHosts(info: DevInfo): string[] {
  const urls = [info.controlPlane?.httpUrl, info.controlPlane?.wsUrl, info.issuer, info.mcp?.url, info.idp?.issuer, info.slack?.viewer];
  const hosts = urls.filter((u): u is string => typeof u === 'string').map((u) => (URL.canParse(u) ? new URL(u).hostname : u));
  for (const t of Object.values(info.targets ?? {})) if (typeof t?.endpoint === 'string') hosts.push(t.endpoint.slice(0, t.endpoint.lastIndexOf(':')));
  return hosts;
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
