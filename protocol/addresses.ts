import { isIP } from 'node:net';

/**
 * True only for addresses that cannot be reached from another machine: 127.0.0.0/8, ::1 (and
 * its IPv4-mapped form) and the name `localhost`. `0.0.0.0` and `::` listen on every
 * interface, so they are not loopback; nor is any other name, since it may resolve anywhere.
 * Both sides judge their listeners and URLs by it: what is not loopback crosses a network.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.split('.')[0] === '127';
  if (isIP(h) === 6) {
    if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped !== null && mapped[1]!.split('.')[0] === '127';
  }
  return false;
}
