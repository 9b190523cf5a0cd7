import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Proc } from './fleet.js';
import { installedHome } from './edgeReleases.js';
import { waitFor } from './wait.js';

/**
 * A node installed from a real artefact in the contract's layout under a temp root
 * (`<root>/opt-edgefleet/<version>`, `current`), its edgecore supervised by the artefact's own
 * bin/edgefleet-loader (as install.sh --no-systemd runs it), joined to a real cloud. Fixed status
 * and broker ports, so the same node answers at the same place across agent restarts.
 */
export interface InstalledNode {
  node: string;
  home: string;
  dataDir: string;
  statusUrl: string;
  mqttPort: number;
  loader: Proc;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startInstalledNode(opts: {
  root: string; node: string; version: string; cloudUrl: string; joinToken: string; healthSeconds?: number; extra?: string[];
}): Promise<InstalledNode> {
  const home = await installedHome(opts.root, opts.version);
  const dataDir = join(opts.root, 'var-lib-edgefleet');
  mkdirSync(join(opts.root, 'etc'), { recursive: true });
  const tokenFile = join(opts.root, 'etc', 'join-token');
  writeFileSync(tokenFile, `${opts.joinToken}\n`, { mode: 0o600 });
  const statusPort = await freePort();
  const mqttPort = await freePort();
  const args = [
    '--node', opts.node, '--cloud-url', opts.cloudUrl, '--data-dir', dataDir, '--join-token-file', tokenFile,
    '--status-port', String(statusPort), '--mqtt-port', String(mqttPort), '--heartbeat-seconds', '1',
    '--node-stats-seconds', '5', '--upgrade-health-seconds', String(opts.healthSeconds ?? 30), ...(opts.extra ?? []),
  ];
  // dash: Debian's /bin/sh, the strictest POSIX shell here.
  const child = spawn('dash', [join(home, 'current', 'bin', 'edgefleet-loader'), ...args], {
    env: { PATH: process.env.PATH, EDGEFLEET_HOME: home, EDGEFLEET_LOADER_SUPERVISOR: 'self' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const loader = new Proc(child);
  await loader.waitForLog('edgecore ready', 30_000);
  return { node: opts.node, home, dataDir, statusUrl: `http://127.0.0.1:${statusPort}`, mqttPort, loader };
}

export interface LocalStatus {
  version: string;
  upgrade?: { previousVersion: string | null; lastAttempt: { upgrade: string; revision: number; version: string; phase: string; message: string } | null };
  workloads: { name: string; status: { state: string; pid?: number | null } | null }[];
}

export async function localStatus(n: InstalledNode): Promise<LocalStatus> {
  const res = await fetch(`${n.statusUrl}/status`);
  return (await res.json()) as LocalStatus;
}

/** Waits until the node's local API answers with `version` (its agent restarted into it). */
export function waitForVersion(n: InstalledNode, version: string, timeoutMs = 60_000): Promise<LocalStatus> {
  return waitFor(`${n.node} to run ${version}`, async () => {
    const s = await localStatus(n);
    return s.version === version ? s : undefined;
  }, timeoutMs, 250);
}
