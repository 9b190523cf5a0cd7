import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { setUpEngine, type TestEngine } from '../../container/engine.js';
import type { ApiClient } from '../fleet.js';
import { BENCH_LABEL, CONTAINER_IMAGE, containerApp } from './benchWorkloads.js';
import { EdgecoreChild } from './edgecoreChild.js';
import { spread, type Spread } from './edgeReport.js';
import { allRunning } from './edgeStatus.js';
import { measureIdle, measureUpdate, type IdleFigures, type UpdateSample } from './phases.js';

/**
 * The container phase: a throw-away Podman engine (scripts/test-engine.sh), an edgecore of its
 * own with `--container-engine`, N container Apps on it. Measures that edgecore's idle footprint
 * and the PUT → new container Running latency. A separate node keeps the process phases' figures
 * (and their pid bookkeeping) free of containers.
 */

export interface ContainerFigures {
  node: string;
  image: string;
  count: number;
  /** Engine start + test image build + a probe container, before edgecore starts. */
  engineSetupMs: number;
  /** Apps POSTed → every container Running in the edge status. */
  allRunningMs: number;
  idle: { zeroContainers: IdleFigures; withContainers: IdleFigures };
  update: { app: string; samples: UpdateSample[]; putMs: Spread | null; statusRunningMs: Spread | null; edgeRunningLogMs: Spread | null };
  /** Containers the engine still had after the apps were deleted and edgecore got SIGTERM; must be 0. */
  containersLeftAfterStop: number;
}

export type ContainerPhaseResult =
  | { skipped: null; error: null; figures: ContainerFigures }
  | { skipped: string; error: null; figures: null }
  | { skipped: null; error: string; figures: null };

/** What the phase holds that must be released even when the run fails midway. */
export interface ContainerHoldings {
  engine: TestEngine | undefined;
  edge: EdgecoreChild | undefined;
}

export interface ContainerPhaseInput {
  api: ApiClient;
  cloudUrl: string;
  node: string;
  names: readonly string[];
  tempDir: string;
  statusPort: number;
  heartbeatSeconds: number;
  idleSeconds: number;
  updates: number;
  clockTicks: number;
  timeoutMs: () => number;
  log: (line: string) => void;
}

/** Stops the phase's edgecore (SIGTERM: it removes its containers), then removes the engine and its directory. */
export async function releaseContainers(held: ContainerHoldings): Promise<void> {
  const { edge, engine } = held;
  held.edge = undefined;
  held.engine = undefined;
  if (edge && !edge.exited()) await edge.stop();
  if (engine) await engine.cleanup();
}

async function countContainers(engine: TestEngine): Promise<number> {
  const listed = await engine.podman('ps', '-a', '-q');
  if (listed.code !== 0) throw new Error(`podman ps: ${listed.stderr.trim()}`);
  return listed.stdout.split('\n').filter((l) => l.trim() !== '').length;
}

export async function runContainerPhase(input: ContainerPhaseInput, held: ContainerHoldings): Promise<ContainerPhaseResult> {
  const { api, node, names, log } = input;
  log(`containers: starting a Podman engine and building ${CONTAINER_IMAGE}`);
  const setupStart = performance.now();
  const setup = await setUpEngine();
  if (setup.engine === null) return { skipped: setup.skipReason.split('\n')[0]!, error: null, figures: null };
  const engine = setup.engine;
  held.engine = engine;
  const engineSetupMs = Math.round(performance.now() - setupStart);
  log(`  engine up at ${engine.socketPath} (${engineSetupMs} ms)`);
  try {
    const joinToken = await api.mintToken(node);
    await api.request('PATCH', `/nodes/${node}`, { metadata: { labels: { [BENCH_LABEL]: node } } });
    const edge = EdgecoreChild.spawn({
      node, cloudUrl: input.cloudUrl, dataDir: join(input.tempDir, 'edge-containers'), logPath: join(input.tempDir, 'edge-containers.log'),
      statusPort: input.statusPort, heartbeatSeconds: input.heartbeatSeconds, joinToken, containerEngine: engine.socketPath,
      mqttPort: 0, // the process edgecore holds 1883
    });
    held.edge = edge;
    await edge.waitForLog('edgecore ready', 30_000);
    await edge.pollStatus((s) => s.link.state === 'connected', 30_000, 100);
    log(`  edgecore pid ${edge.pid} (container engine) connected; idle ${input.idleSeconds} s with 0 containers`);
    const zeroContainers = await measureIdle(edge.pid, input.clockTicks, input.idleSeconds);
    log(`  RSS ${zeroContainers.rssEndMiB} MiB, CPU ${zeroContainers.cpuPercent}%`);

    const postedAt = performance.now();
    for (const name of names) await api.request('POST', '/apps', containerApp(name, node, 1));
    const placed = await edge.pollStatus((s) => allRunning(s, names), Math.min(input.timeoutMs(), 300_000), 100);
    const allRunningMs = Math.round(placed.at - postedAt);
    log(`  ${names.length} containers Running after ${allRunningMs} ms; idle ${input.idleSeconds} s`);
    const withContainers = await measureIdle(edge.pid, input.clockTicks, input.idleSeconds);
    log(`  RSS ${withContainers.rssEndMiB} MiB, CPU ${withContainers.cpuPercent}%`);

    const app = names[0]!;
    const samples: UpdateSample[] = [];
    for (let i = 0; i < input.updates; i++) {
      const sample = await measureUpdate(edge, api, app, node, i + 2, null, Math.min(input.timeoutMs(), 120_000), (r) => containerApp(app, node, r));
      samples.push(sample);
      log(`  container update ${i + 1}: status ${sample.statusRunningMs} ms (edge running log ${sample.edgeRunningLogMs} ms)`);
      await sleep(300);
    }

    for (const name of names) await api.request('DELETE', `/apps/${name}`);
    const wanted = new Set(names);
    await edge.pollStatus((s) => !s.workloads.some((w) => wanted.has(w.name)), 60_000, 200)
      .catch(() => log('  container apps still listed 60 s after DELETE; stopping edgecore anyway'));
    held.edge = undefined;
    await edge.stop();
    const containersLeftAfterStop = await countContainers(engine);
    log(`  edgecore stopped; ${containersLeftAfterStop} container(s) left in the engine`);
    return {
      skipped: null, error: null,
      figures: {
        node, image: CONTAINER_IMAGE, count: names.length, engineSetupMs, allRunningMs,
        idle: { zeroContainers, withContainers },
        update: {
          app, samples,
          putMs: spread(samples.map((u) => u.putMs)),
          statusRunningMs: spread(samples.map((u) => u.statusRunningMs)),
          edgeRunningLogMs: spread(samples.map((u) => u.edgeRunningLogMs)),
        },
        containersLeftAfterStop,
      },
    };
  } catch (err) {
    const message = (err as Error).message.split('\n')[0]!;
    log(`containers: FAILED: ${message}`);
    if (held.edge) log(`container edgecore log tail:\n${held.edge.logTail()}`);
    return { skipped: null, error: message, figures: null };
  } finally {
    await releaseContainers(held);
  }
}
