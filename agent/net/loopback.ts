import { isIPv4, isIPv6 } from 'node:net';

/**
 * Whether an address (or a listen/connect host name) stays on this machine: 127.0.0.0/8, ::1, an
 * IPv4-mapped 127.x address, or `localhost` (reserved for loopback by RFC 6761). Anything else,
 * including 0.0.0.0 and ::, is reachable from other hosts.
 */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (!isIPv6(h)) return false;
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const mapped = /^(?:::|0:0:0:0:0:)ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h)?.[1];
  return mapped !== undefined && isIPv4(mapped) && mapped.startsWith('127.');
}
