import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { Client } from 'ssh2';
import type { SshTargetConfig } from '../config';
import { sshFingerprint } from '../../core/ssh/public-key';
import { relayScavenger } from '../net/scavenger';

/** How long the upstream handshake and login may take. */
export const UPSTREAM_READY_TIMEOUT_MS = 15_000;
/** Keepalives on the upstream connection, so that a dead host ends the caller's session too. */
export const UPSTREAM_KEEPALIVE_MS = 15_000;

/** The upstream refused or could not be reached; `message` is safe to show the caller. */
export class UpstreamError extends Error {
  override name = 'UpstreamError';
}

export type UpstreamLogin = 'read' | 'write';

/**
 * An SSH connection to the target as its read or write login. The target's host key must have the
 * pinned fingerprint (config `hostKey`): any other key ends the handshake before a credential is sent.
 */
export async function connectUpstream(target: SshTargetConfig, login: UpstreamLogin): Promise<Client> {
  const { user, keyFile } = login === 'read' ? target.readLogin : target.writeLogin;
  const privateKey = await readFile(keyFile);
  const client = new Client();
  let hostKeyMismatch = false;
  return new Promise<Client>((resolve, reject) => {
    client.once('ready', () => resolve(client));
    // Not once: ssh2 may report more than one error on a connection (after login as well), and an
    // error event nobody listens to would end the agent.
    client.on('error', (e) => {
      client.end();
      reject(new UpstreamError(hostKeyMismatch ? `the host key of ${target.name} does not match the pinned ${target.hostKey}` : `${target.name} is unreachable or refused the ${login} login (${e.message})`));
    });
    // Nagle's algorithm held back the small packets the agent sends on (SFTP READ requests, window
    // adjustments) until the target acknowledged the last: the caller's socket has no delay either.
    const sock = connect({ host: target.upstream.host, port: target.upstream.port, noDelay: true });
    relayScavenger().watch(sock);
    client.connect({
      sock,
      username: user,
      privateKey,
      readyTimeout: UPSTREAM_READY_TIMEOUT_MS,
      keepaliveInterval: UPSTREAM_KEEPALIVE_MS,
      hostVerifier: (key: Buffer) => {
        hostKeyMismatch = sshFingerprint(key) !== target.hostKey;
        return !hostKeyMismatch;
      },
    });
  });
}
