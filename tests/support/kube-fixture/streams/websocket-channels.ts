import type { WebSocket } from 'ws';
import { InputChannel, SESSION_FAILED, type ExitStatus, type SessionStreams } from './exec-session';

/** The channel-numbered WebSocket subprotocols of remotecommand (k8s.io/apimachinery/pkg/util/remotecommand). */
export const CHANNEL_V5 = 'v5.channel.k8s.io';
export const CHANNEL_V4 = 'v4.channel.k8s.io';
export const CHANNEL_PROTOCOLS = [CHANNEL_V5, CHANNEL_V4];

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
/** v5 only: `[255, channel]` half-closes a channel (the client's end of stdin). */
const CLOSE = 255;

/**
 * Runs a session over one WebSocket: every binary message starts with its channel number; the exit
 * Status goes on the error channel, then a normal close.
 */
export function serveChannels(ws: WebSocket, protocol: string, run: (streams: SessionStreams) => Promise<ExitStatus>): void {
  const stdin = new InputChannel();
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary || data.length === 0) return;
    const channel = data[0];
    if (channel === STDIN) stdin.push(data.subarray(1));
    else if (channel === CLOSE && protocol === CHANNEL_V5 && data[1] === STDIN) stdin.end();
  });
  ws.on('close', () => stdin.end());
  ws.on('error', () => stdin.end());
  const send = (channel: number, data: Buffer): void => {
    if (ws.readyState === ws.OPEN) ws.send(Buffer.concat([Buffer.from([channel]), data]));
  };
  void run({ stdout: (d) => send(STDOUT, d), stderr: (d) => send(STDERR, d), onStdin: (l) => stdin.onData(l), onStdinEnd: (l) => stdin.onEnd(l) })
    .catch(() => SESSION_FAILED)
    .then((status) => {
      send(ERROR, Buffer.from(JSON.stringify(status)));
      if (ws.readyState === ws.OPEN) ws.close(1000);
    });
}
