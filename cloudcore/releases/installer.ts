import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ReleaseVersionSchema } from '../../protocol/index.js';

/**
 * `GET /install.sh`: deploy/install.sh with the cloud's URL, the newest release and the release
 * public key written into it, so `curl … | sh` needs nothing else. Everything written in is
 * checked against a strict pattern first and lands inside single quotes: the script is run as
 * root on the node, and the host part comes from the request's Host header.
 */
export const INSTALLER_MARKS = {
  cloudUrl: '@@EDGEFLEET_CLOUD_URL@@',
  version: '@@EDGEFLEET_DEFAULT_VERSION@@',
  releaseKey: '@@EDGEFLEET_RELEASE_KEY@@',
} as const;

export interface InstallerValues { cloudUrl: string; version: string; releaseKeyPem: string }

export class InstallerError extends Error {}

/** A Host header cloudcore may put in a script: a DNS name, IPv4 or [IPv6], with an optional port. */
const HOST_HEADER = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

export function cloudUrlFromHost(scheme: 'http' | 'https', host: string | undefined): string {
  if (host === undefined || host.length > 260 || !HOST_HEADER.test(host)) {
    throw new InstallerError('the request\'s Host header is not a host name or address (with an optional port): the installer would not know where cloudcore is');
  }
  return `${scheme}://${host}`;
}

const PEM_PUBLIC_KEY = /^-----BEGIN PUBLIC KEY-----\n(?:[A-Za-z0-9+/=]{1,64}\n)+-----END PUBLIC KEY-----\n?$/;

export function renderInstaller(template: string, values: InstallerValues): string {
  if (!/^https?:\/\/[A-Za-z0-9.:[\]-]+$/.test(values.cloudUrl)) throw new InstallerError(`cloud URL "${values.cloudUrl}" is not scheme://host[:port]`);
  if (!ReleaseVersionSchema.safeParse(values.version).success) throw new InstallerError(`"${values.version}" is not a release version`);
  if (!PEM_PUBLIC_KEY.test(values.releaseKeyPem)) throw new InstallerError('the release key is not a PEM public key');
  const fills: [string, string][] = [
    [INSTALLER_MARKS.cloudUrl, values.cloudUrl], [INSTALLER_MARKS.version, values.version], [INSTALLER_MARKS.releaseKey, values.releaseKeyPem.trimEnd()],
  ];
  let out = template;
  for (const [mark, value] of fills) {
    const parts = out.split(mark);
    if (parts.length !== 2) throw new InstallerError(`installer template holds ${mark} ${parts.length - 1} times, not once`);
    out = parts.join(value);
  }
  return out;
}

/**
 * cloudcore's URL as edges reach it: its first advertise address (an IPv6 one in brackets) and
 * the port it listens on; undefined without an advertise address (edgectl then uses its own).
 */
export function advertisedCloudUrl(address: string | undefined, scheme: 'http' | 'https', listening: AddressInfo | string | null): string | undefined {
  if (address === undefined || listening === null || typeof listening === 'string') return undefined;
  const host = address.includes(':') ? `[${address}]` : address;
  return `${scheme}://${host}:${listening.port}`;
}

/** deploy/install.sh of this package: beside dist/ when built, beside the sources under vitest. */
export function installerTemplatePath(moduleDir: string = import.meta.dirname): string {
  const candidates = [join(moduleDir, '..', '..', '..', 'deploy', 'install.sh'), join(moduleDir, '..', '..', 'deploy', 'install.sh')];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`deploy/install.sh not found (looked at ${candidates.join(', ')})`);
  return found;
}

export function loadInstallerTemplate(moduleDir: string = import.meta.dirname): string {
  return readFileSync(installerTemplatePath(moduleDir), 'utf8');
}
