import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readHostPublicKeyLine } from '../../agent/ssh/host-key';
import { DEFAULT_DATA_DIR } from '../../local/dev-config';
import { parse, UsageError } from '../args';
import { freshToken } from '../auth/login-session';
import { configDir } from '../auth/token-cache';
import { targetEndpoint } from '../target-connection';

/** The askpass program ssh runs for the token (see askpass.cjs); the token reaches it in this variable. */
export const ASKPASS_PROGRAM = resolve(__dirname, '..', 'askpass.cjs');
export const ASKPASS_TOKEN_ENV = 'TWOKEY_ASKPASS_TOKEN';
/** The pid of the process that started ssh: askpass answers only the ssh this process started (not a jump host's). */
export const ASKPASS_OWNER_ENV = 'TWOKEY_ASKPASS_OWNER';
/** Where `twokey dev` keeps its agent's state (local/dev-stack.ts: DIR/agent, stateDir `state`). */
const devAgentStateDir = (dataDir: string): string => join(dataDir, 'agent', 'state');
const SSH_DEFAULT_PORT = 22;

/** known_hosts lines for the SSH targets an agent serves: its endpoint (or `host`) and the target's host key. */
export async function knownHostsLines(stateDir: string, options: { target?: string; host?: string } = {}): Promise<string[]> {
  const text = await readFile(join(stateDir, 'endpoints.json'), 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return '{}';
    throw e;
  });
  const endpoints = JSON.parse(text) as Record<string, string>;
  const targets = options.target ? [options.target] : Object.keys(endpoints).sort();
  const lines: string[] = [];
  for (const target of targets) {
    const endpoint = endpoints[target];
    const key = endpoint ? await readHostPublicKeyLine(stateDir, target) : undefined;
    if (!endpoint || !key) continue;
    const separator = endpoint.lastIndexOf(':');
    const host = options.host ?? endpoint.slice(0, separator).replace(/^\[(.*)\]$/, '$1');
    const port = Number(endpoint.slice(separator + 1));
    lines.push(`${port === SSH_DEFAULT_PORT ? host : `[${host}]:${port}`} ${key}`);
  }
  return lines;
}

const stateOptions = {
  'state-dir': { type: 'string' },
  'data-dir': { type: 'string', default: DEFAULT_DATA_DIR },
  host: { type: 'string' },
} as const;

/** `twokey known-hosts [--target T] [--state-dir DIR] [--host NAME]`: lines for ~/.ssh/known_hosts. */
export async function knownHostsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...stateOptions, target: { type: 'string' } });
  if (positionals.length > 0) throw new UsageError('usage: twokey known-hosts [--target T] [--state-dir AGENT_STATE_DIR] [--host NAME]');
  const stateDir = values['state-dir'] ?? devAgentStateDir(values['data-dir']);
  const lines = await knownHostsLines(stateDir, { target: values.target, host: values.host });
  if (lines.length === 0) {
    console.error(`twokey known-hosts: no SSH host key ${values.target ? `for ${values.target} ` : ''}in ${stateDir} (has the agent served it yet?)`);
    return 1;
  }
  for (const line of lines) console.log(line);
  return 0;
}

/**
 * `twokey ssh TARGET [--user U] [-- ssh arguments]`: OpenSSH's ssh to the target's agent endpoint, host
 * key checked against the agent's key only, the caller's token (TWOKEY_SSH_TOKEN, or the login's) given
 * at the agent's password prompt through SSH_ASKPASS. Exits with ssh's status.
 */
export async function sshCommand(argv: string[]): Promise<number> {
  const split = argv.indexOf('--');
  const own = split < 0 ? argv : argv.slice(0, split);
  const sshArgs = split < 0 ? [] : argv.slice(split + 1);
  const { values, positionals } = parse(own, { ...stateOptions, port: { type: 'string' }, user: { type: 'string', short: 'l' }, 'known-hosts': { type: 'string' } });
  const target = positionals[0];
  if (!target || positionals.length > 1) throw new UsageError('usage: twokey ssh TARGET [--user U] [--host H --port P] [--known-hosts FILE | --state-dir DIR] [-- ssh arguments]');
  const endpoint = await targetEndpoint({ target, host: values.host, port: values.port, dataDir: values['data-dir'] });
  const token = process.env.TWOKEY_SSH_TOKEN ?? (await freshToken(configDir()));
  accessSync(ASKPASS_PROGRAM, constants.X_OK);
  const scratch = await mkdtemp(join(tmpdir(), 'twokey-ssh-'));
  try {
    let knownHosts = values['known-hosts'];
    if (!knownHosts) {
      const lines = await knownHostsLines(values['state-dir'] ?? devAgentStateDir(values['data-dir']), { target, host: endpoint.host });
      if (lines.length === 0) throw new UsageError(`no host key of ${target} known here: pass --known-hosts FILE (from twokey known-hosts on the agent's host) or --state-dir`);
      knownHosts = join(scratch, 'known_hosts');
      await writeFile(knownHosts, `${lines.join('\n')}\n`, { mode: 0o600 });
    }
    const args = [
      '-p', String(endpoint.port),
      '-l', values.user ?? process.env.USER ?? 'twokey',
      // Only the agent's own host key is accepted, and nothing is learned or asked about keys.
      '-o', `UserKnownHostsFile=${knownHosts}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'UpdateHostKeys=no',
      '-o', 'CheckHostIP=no',
      '-o', 'PreferredAuthentications=keyboard-interactive,password',
      '-o', 'NumberOfPasswordPrompts=1',
      endpoint.host,
      ...sshArgs,
    ];
    const child = spawn('ssh', args, {
      stdio: 'inherit',
      env: { ...process.env, SSH_ASKPASS: ASKPASS_PROGRAM, SSH_ASKPASS_REQUIRE: 'force', [ASKPASS_TOKEN_ENV]: token, [ASKPASS_OWNER_ENV]: String(process.pid) },
    });
    // ssh decides what an interrupt means (a remote program may want it); this process waits for ssh.
    const ignore = (): void => undefined;
    process.on('SIGINT', ignore);
    try {
      return await new Promise<number>((done, fail) => {
        child.once('error', fail);
        // As a shell reports it: a program killed by signal N exits 128 + N.
        child.once('exit', (code, signal) => done(code ?? 128 + (signal ? osConstants.signals[signal] : 0)));
      });
    } finally {
      process.off('SIGINT', ignore);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
