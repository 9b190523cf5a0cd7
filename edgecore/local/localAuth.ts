import { createHash, timingSafeEqual } from 'node:crypto';
import { isLoopbackHost } from '../../protocol/index.js';

/**
 * Who may read the local status page and API. Pure rules, so they are visible and tested in
 * one place; statusServer.ts applies them.
 *
 * - Bound to loopback (the default), the page is open to whoever is on the node itself.
 * - Bound to anything else (`--status-host 0.0.0.0`, a LAN address, a host name), edgecore
 *   refuses to start without a local password (`--status-password-file`); with one, every
 *   page, `/status` and `/metrics` request needs HTTP Basic auth (any user name, that password).
 */

/** Shortest local password accepted: a LAN-reachable page must not be guarded by "1234". */
export const MIN_STATUS_PASSWORD_LENGTH = 8;

/** The password in a status password file: its first line, trimmed. Throws naming the file. */
export function parseStatusPasswordFile(text: string, file: string): string {
  const password = (text.split(/\r?\n/)[0] ?? '').trim();
  if (password.length === 0) throw new Error(`status password file ${file} is empty; put the password on its first line`);
  if (password.length < MIN_STATUS_PASSWORD_LENGTH) {
    throw new Error(`status password in ${file} is too short (${password.length} characters); use at least ${MIN_STATUS_PASSWORD_LENGTH}`);
  }
  return password;
}

/** The password of an `Authorization: Basic …` header (the user name is not checked), or undefined. */
export function basicAuthPassword(header: string | undefined): string | undefined {
  const match = header?.match(/^Basic\s+([A-Za-z0-9+/=]+)\s*$/i);
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time comparison (hashing first gives timingSafeEqual equal lengths). */
export function statusPasswordMatches(expected: string, header: string | undefined): boolean {
  const given = basicAuthPassword(header);
  if (given === undefined) return false;
  return timingSafeEqual(digest(given), digest(expected));
}

/**
 * DNS-rebinding guard for a loopback-bound page without a password: a web page on the
 * internet can make a browser on the node send requests to 127.0.0.1 under its own host
 * name, so only requests addressed to a loopback host (or no Host at all) are answered.
 */
export function hostHeaderIsLoopback(hostHeader: string | undefined): boolean {
  if (hostHeader === undefined || hostHeader === '') return true;
  const host = hostHeader.startsWith('[') ? hostHeader.slice(0, hostHeader.indexOf(']') + 1) : hostHeader.replace(/:\d+$/, '');
  return isLoopbackHost(host);
}
