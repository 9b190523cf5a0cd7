import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Cuts the simulated edges' links to cloudcore on loopback, and restores them, with netfilter
 * rules in a chain of the benchmark's own. Two kinds of cut:
 * - `reset`: new connections are refused with a TCP reset and the live ones are destroyed on both
 *   sides at once (`ss -K`), as when a router between them reboots and answers RST;
 * - `silent`: every packet is dropped and nothing is closed (no FIN, no RST), so each side only
 *   learns of the cut from its heartbeat timeout.
 * Traffic from `apiAddress` (the benchmark's REST client binds it as its source) is let through,
 * so the operator can still change the app during the cut. Needs root, iptables and ss (iproute2).
 */
export type CutMode = 'reset' | 'silent';

export class LinkCut {
  private readonly chain = `EF_BENCH_${process.pid}`;
  private installed = false;

  constructor(private readonly port: number, private readonly apiAddress: string, private readonly edgeAddress = '127.0.0.1') {}

  /** Says what is missing for a cut on this machine, or null when it can be done. */
  static async unavailableReason(): Promise<string | null> {
    if (process.getuid?.() !== 0) return 'cutting links needs root (netfilter rules on loopback)';
    try {
      await run('iptables', ['-w', '-L', 'INPUT', '-n']);
      await run('ss', ['-V']);
    } catch (err) {
      return `iptables and ss are needed to cut links: ${(err as Error).message}`;
    }
    return null;
  }

  async cut(mode: CutMode): Promise<void> {
    if (this.installed) throw new Error('links are already cut');
    const port = String(this.port);
    const verdict = mode === 'reset' ? ['REJECT', '--reject-with', 'tcp-reset'] : ['DROP'];
    await iptables('-N', this.chain);
    this.installed = true;
    await iptables('-A', this.chain, '-p', 'tcp', '--dport', port, '-s', this.apiAddress, '-j', 'RETURN');
    await iptables('-A', this.chain, '-p', 'tcp', '--sport', port, '-d', this.apiAddress, '-j', 'RETURN');
    await iptables('-A', this.chain, '-p', 'tcp', '--dport', port, '-j', ...verdict);
    await iptables('-A', this.chain, '-p', 'tcp', '--sport', port, '-j', ...verdict);
    await iptables('-I', 'INPUT', '-i', 'lo', '-j', this.chain);
    if (mode === 'reset') {
      // The edges' ends, then cloudcore's ends of the same connections (not the REST client's).
      await run('ss', ['-K', 'src', this.edgeAddress, 'dst', this.edgeAddress, 'dport', '=', `:${port}`]);
      await run('ss', ['-K', 'src', this.edgeAddress, 'dst', this.edgeAddress, 'sport', '=', `:${port}`]);
    }
  }

  async restore(): Promise<void> {
    if (!this.installed) return;
    this.installed = false;
    await iptables('-D', 'INPUT', '-i', 'lo', '-j', this.chain).catch(() => undefined);
    await iptables('-F', this.chain).catch(() => undefined);
    await iptables('-X', this.chain).catch(() => undefined);
  }
}

async function iptables(...args: string[]): Promise<void> {
  await run('iptables', ['-w', ...args]);
}
