import type { Client, ClientChannel, ServerChannel, TcpipRequestInfo } from 'ssh2';
import type { AgentContext } from '../agent';
import type { StartedSession } from '../sessions/lifecycle';
import type { SshEvent } from './events';
import { decideAndRecord } from './judge';

/** How long the target has to open a forwarded connection. */
export const FORWARD_OPEN_TIMEOUT_MS = 15_000;

export interface ForwardDeps {
  readonly agent: AgentContext;
  readonly target: string;
  readonly session: StartedSession<SshEvent>;
  upstream(): Promise<Client>;
}

/**
 * A `direct-tcpip` channel (`ssh -L`, RFC 4254 section 7.2): opened from the target on the read login
 * to a destination only when a rule's `forwards` name it (and its read decision allows), else refused.
 * The bytes pass as they are (a forwarded protocol is not judged); opening and closing are recorded.
 */
export function openForward(deps: ForwardDeps, info: TcpipRequestInfo, accept: () => ServerChannel | undefined, reject: () => void): void {
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
