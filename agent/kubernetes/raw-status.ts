import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_REASONS, kubeStatus, type StatusReason } from './status';

/** A Status failure written on a raw socket (an upgrade refused before any protocol began), then the socket closed. */
export function writeRawStatus(socket: Duplex, reason: StatusReason, message: string): void {
  const body = JSON.stringify(kubeStatus(reason, message));
  const code = STATUS_REASONS[reason];
  if (!socket.writable) return void socket.destroy();
  socket.end(`HTTP/1.1 ${code} ${STATUS_CODES[code] ?? reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
