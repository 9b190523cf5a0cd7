/** The source address a limit counts under: IPv4 peers on a dual-stack socket come as `::ffff:a.b.c.d`. */
export function sourceAddress(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined) return 'unknown';
  return remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.') ? remoteAddress.slice(7) : remoteAddress;
}
