import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { BlockList, isIPv4 } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ContainerTemplateSchema, type ContainerTemplate, type WorkloadStatus } from '../../protocol/index.js';
import { ContainerRuntime, type ContainerRuntimeOptions } from '../../edgecore/runtime/container/containerRuntime.js';
import { ownedFilters } from '../../edgecore/runtime/container/containerSpec.js';
import { EngineClient } from '../../edgecore/runtime/container/engineClient.js';
import { z } from 'zod';
import { waitFor } from '../helpers/wait.js';

/**
 * A real Podman engine for the container runtime's tests, started and stopped by pid through
 * `scripts/test-engine.sh` (which holds the flags this machine needs). Everything lives in one
 * temp directory: storage, run state, network config, and the socket.
 */

export const TEST_IMAGE = 'localhost/edgefleet-test:1';

export interface CommandResult { code: number; stdout: string; stderr: string }

export class TestEngine {
  readonly socketPath: string;
  private service: ChildProcess | null = null;
  private serviceLog = '';

  constructor(readonly dir: string) {
    this.socketPath = join(dir, 'podman.sock');
  }

  get pid(): number | null {
    return this.service?.pid ?? null;
  }

  /** Starts the engine service (again, after `stop`) and waits until it answers. */
  async start(): Promise<void> {
    if (this.service) throw new Error('engine already running');
    this.serviceLog = '';
    const child = spawn('bash', [scriptPath(), 'serve', this.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.service = child;
    const keep = (b: Buffer): void => { this.serviceLog = (this.serviceLog + b.toString('utf8')).slice(-4000); };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let exited = false;
    child.once('exit', () => { exited = true; });
    const client = new EngineClient({ socketPath: this.socketPath, timeoutMs: 2_000 });
    try {
      await waitFor('the podman service to answer', async () => {
        if (exited) throw new Error(`podman service exited: ${this.serviceLog.trim()}`);
        await client.ping();
        return true;
      }, 30_000, 200);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops the service by its pid (SIGTERM, SIGKILL after 10 s). Containers keep running. */
  async stop(): Promise<void> {
    const child = this.service;
    this.service = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** The podman CLI against this engine's storage. */
  podman(...args: string[]): Promise<CommandResult> {
    return run('bash', [scriptPath(), 'podman', this.dir, ...args]);
  }

  async buildTestImage(ref = TEST_IMAGE): Promise<void> {
    const result = await run('bash', [scriptPath(), 'image', this.dir, ref]);
    if (result.code !== 0) throw new Error(`cannot build test image: ${result.stderr.trim()}`);
  }

  /**
   * The engine's own default network as podman reports it, whichever backend (netavark or CNI)
   * it picked: tests check that a container's address lies in this subnet, not in one literal.
   */
  async defaultNetwork(): Promise<{ name: string; backend: string; subnet: string }> {
    const name = `efnet${readFileSync(join(this.dir, 'net-id'), 'utf8').trim()}`;
    const backend = await run('bash', [scriptPath(), 'backend', this.dir]);
    const inspect = await this.podman('network', 'inspect', name);
    if (backend.code !== 0 || inspect.code !== 0) throw new Error(`cannot inspect network ${name}: ${backend.stderr}${inspect.stderr}`.trim());
    const [network] = NetworkInspectSchema.parse(JSON.parse(inspect.stdout));
    return { name, backend: backend.stdout.trim(), subnet: network!.subnets[0]!.subnet };
  }

  /** Stops the service, removes every container and image of this engine and its directory. */
  async cleanup(): Promise<void> {
    await this.stop();
    await run('bash', [scriptPath(), 'cleanup', this.dir]);
  }
}

const NetworkInspectSchema = z.array(z.object({ subnets: z.array(z.object({ subnet: z.string() })).min(1) })).length(1);

/** Whether an IPv4 address lies in a CIDR subnet (node:net's BlockList does the arithmetic). */
export function inSubnet(address: string, cidr: string): boolean {
  const [net, prefix] = cidr.split('/');
  const block = new BlockList();
  block.addSubnet(net!, Number(prefix), 'ipv4');
  return isIPv4(address) && block.check(address, 'ipv4');
}

export type EngineSetup = { engine: TestEngine; skipReason: null } | { engine: null; skipReason: string };

/**
 * Starts an engine with the test image, or says why it cannot here (then the tests are
 * reported skipped with that reason, never passed).
 */
export async function setUpEngine(): Promise<EngineSetup> {
  const check = await run('bash', [scriptPath(), 'check']);
  if (check.code !== 0) return { engine: null, skipReason: (check.stdout + check.stderr).trim() || 'test-engine.sh check failed' };
  const engine = new TestEngine(mkdtempSync(join(tmpdir(), 'ef-engine-')));
  try {
    await engine.start();
    await engine.buildTestImage();
    const probe = await engine.podman('run', '--rm', '--network', 'none', TEST_IMAGE, '/bin/true');
    if (probe.code !== 0) throw new Error(`podman cannot run a container here: ${probe.stderr.trim()}`);
    return { engine, skipReason: null };
  } catch (err) {
    await engine.cleanup();
    return { engine: null, skipReason: err instanceof Error ? err.message : String(err) };
  }
}

export function reportSkip(setup: EngineSetup, suite: string): void {
  if (setup.skipReason !== null) console.warn(`[${suite}] SKIPPED: ${setup.skipReason}`);
}

export const QUICK_BACKOFF = { initialMs: 300, maxMs: 1_500, resetAfterMs: 20_000 };

let nodeCounter = 0;

/** A runtime on `engine` for a node name of its own, so tests never see each other's containers. */
export function testRuntime(engine: TestEngine, dataVolumeDir: string, opts: Partial<ContainerRuntimeOptions> = {}): ContainerRuntime {
  nodeCounter += 1;
  return new ContainerRuntime({
    socketPath: engine.socketPath,
    nodeName: `n${process.pid}-${nodeCounter}`,
    dataVolumeDir,
    backoff: QUICK_BACKOFF,
    pollIntervalMs: 200,
    stopGraceSeconds: 1,
    requestTimeoutMs: 10_000,
    ...opts,
  });
}

/** A container template with defaults applied, on the test image unless said otherwise. */
export function template(fields: Record<string, unknown>): ContainerTemplate {
  return ContainerTemplateSchema.parse({ runtime: 'container', image: TEST_IMAGE, ...fields });
}

/** Runs until SIGTERM, which it honours at once (PID 1 has no default signal handlers). */
export const LONG_RUNNING = ['/bin/sh', '-c', "trap 'exit 0' TERM; echo started; while :; do sleep 1 & wait $!; done"];

/** Owned containers of `workload` on the runtime's node (running or not). */
export async function containersOf(runtime: ContainerRuntime, workload: string): Promise<string[]> {
  const found = await runtime.engine.listContainers({ labels: ownedFilters(runtime.nodeName, workload) });
  return found.map((c) => c.Id);
}

export function run(file: string, args: string[], timeoutMs = 120_000): Promise<CommandResult> {
  return new Promise((resolveRun) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString('utf8'); });
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString('utf8'); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); resolveRun({ code: 127, stdout, stderr: stderr + err.message }); });
    child.on('close', (code) => { clearTimeout(timer); resolveRun({ code: code ?? 1, stdout, stderr }); });
  });
}

function scriptPath(): string {
  // test/container/engine.ts in the source tree, dist-test/test/container/engine.js when built.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i += 1) {
    const candidate = resolve(dir, 'scripts', 'test-engine.sh');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('scripts/test-engine.sh not found');
}

/** Waits until `runtime` reports a status of `name` that passes `check`; the failure shows the last status. */
export function waitForStatus(runtime: ContainerRuntime, name: string, check: (s: WorkloadStatus) => boolean, what: string, timeoutMs = 30_000): Promise<WorkloadStatus> {
  return waitFor(`${name}: ${what} (now ${JSON.stringify(runtime.statuses().get(name))})`, () => {
    const s = runtime.statuses().get(name);
    return s && check(s) ? s : null;
  }, timeoutMs, 100);
}
