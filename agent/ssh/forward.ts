import { isIP } from 'node:net';
import type { Client, ClientChannel, ServerChannel, TcpipRequestInfo } from 'ssh2';
import { decideAndRecord, type SshSessionScope } from './judge';

/** How long the target has to open a forwarded connection. */
export const FORWARD_OPEN_TIMEOUT_MS = 15_000;

export interface ForwardDeps extends SshSessionScope {
  upstream(): Promise<Client>;
}

/**
 * A `direct-tcpip` channel (`ssh -L`, RFC 4254 section 7.2): opened from the target on the read login
 * to a destination only when a rule's `forwards` name it (and its read decision allows), else refused.
 * The bytes pass as they are (a forwarded protocol is not judged); opening and closing are recorded.
 */
export function openForward(deps: ForwardDeps, info: TcpipRequestInfo, accept: () => ServerChannel | undefined, reject: () => void): void {
  if (!plainDestinationHost(info.destIP)) {
    deps.session.record({ e: 'forward.refused', destination: `${info.destIP}:${info.destPort}`, reason: 'not an IP address or a plain host name' });
    return reject();
  }
  const destination = `${info.destIP}:${info.destPort}`;
  const decision = decideAndRecord(deps, { class: 'read', ssh: { forward: destination } }, `forward to ${destination}`);
  if (decision.kind !== 'allow') return reject();
  void deps
    .upstream()
    .then(
      (client) =>
        new Promise<ClientChannel>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('timed out')), FORWARD_OPEN_TIMEOUT_MS);
          client.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (e, stream) => {
            clearTimeout(timer);
            if (e) reject(e);
            else resolve(stream);
          });
        }),
    )
    .then(
      (stream) => {
        const channel = accept();
        if (!channel) return stream.close();
        let bytes = 0;
        stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
        channel.pipe(stream).pipe(channel);
        channel.on('close', () => stream.close());
        stream.on('close', () => {
          channel.close();
          deps.session.record({ e: 'forward.end', destination, bytesFromTarget: bytes });
        });
      },
      (e: unknown) => {
        deps.session.record({ e: 'forward.failed', destination, error: String(e) });
        reject();
      },
    );
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/i;
/** A first label the target's resolver would read as part of an address (`10.1`, `0x7f.1`, `2130706433`). */
const NUMERIC_LABEL = /^(0x[0-9a-f]*|[0-9]+)$/i;
const MAX_HOST_NAME_CHARS = 253;

/**
 * Whether a forward's host is an IP address or a plain DNS name. A policy glob sees the text, the
 * target's resolver the address: a name that starts like an address (`10.0.0.evil.example` matches
 * `10.0.0.*:5432` and resolves anywhere), other spellings of an address, a trailing dot, or anything a
 * resolver might read otherwise are refused.
 */
export function plainDestinationHost(host: string): boolean {
  if (isIP(host)) return true;
  if (host.length > MAX_HOST_NAME_CHARS) return false;
  const labels = host.split('.');
  return labels.every((l) => LABEL.test(l)) && !NUMERIC_LABEL.test(labels[0] ?? '');
}
