import type { ContainerTemplate } from '../../../protocol/index.js';
import type { ProbeEndpoint, ProbeExecutor, ProbeTarget } from '../probes/probeChecks.js';
import { startRunProbes, type RunProbes, type WorkloadProbes } from '../probes/runProbes.js';
import { isEngineUnavailable, type ContainerInspect, type EngineClient } from './engineClient.js';

/**
 * Health probes of one container run. exec probes run inside the container (engine exec, with
 * the container's own env). httpGet/tcpSocket probes whose host is the schema default
 * `127.0.0.1` mean "the workload itself", which for a container is not edgecore's loopback:
 * they go to the container's address on its network, or, for a container without one
 * (network "none"), to the port published on the host; a host-network container shares
 * edgecore's loopback, so there `127.0.0.1` means what it says.
 *
 * Liveness and readiness run as two separate probe sets so that an engine outage (every exec
 * check fails because the engine does not answer, not because the workload is sick) restarts
 * the liveness probe instead of killing a workload that may be perfectly healthy; edgecore
 * cannot stop the container then anyway.
 */

/** The probe host that stands for the workload itself (the schema's default). */
export const WORKLOAD_HOST = '127.0.0.1';
/** Output an exec probe keeps per stream; only its start is quoted in `lastError`. */
const PROBE_OUTPUT_BYTES = 4_096;

/** The container's IP address on its network, or null when it has none (network "none"). */
export function containerAddress(found: ContainerInspect): string | null {
  const settings = found.NetworkSettings;
  if (!settings) return null;
  if (settings.IPAddress) return settings.IPAddress;
  // Networks other than the default leave the top-level field empty; take the first by name
  // so the choice is stable from one inspect to the next.
  const names = Object.keys(settings.Networks).sort();
  for (const name of names) {
    const address = settings.Networks[name]?.IPAddress;
    if (address) return address;
  }
  return null;
}

/**
 * Where edgecore reaches a probe's endpoint. An explicit host other than `127.0.0.1` is used
 * as is. Throws (the check then fails with that reason) when the container can be reached
 * neither on its address nor through a published port.
 */
export function resolveProbeEndpoint(endpoint: ProbeEndpoint, address: string | null, template: Pick<ContainerTemplate, 'ports' | 'hostNetwork'>): ProbeEndpoint {
  if (endpoint.host !== WORKLOAD_HOST || template.hostNetwork === true) return endpoint;
  const { ports } = template;
  if (address !== null) return { host: address, port: endpoint.port };
  const published = ports.find((p) => p.containerPort === endpoint.port && p.protocol === 'tcp' && p.hostPort !== undefined);
  if (published?.hostPort !== undefined) return { host: publishedHost(published.hostIP), port: published.hostPort };
  throw new Error(`container has no network address and port ${endpoint.port} is not published on the host`);
}

/** A port published on every host address is reached on loopback; one bound to a single address on that address. */
function publishedHost(hostIP: string | undefined): string {
  return hostIP === undefined || hostIP === '' || hostIP === '0.0.0.0' || hostIP === '::' ? WORKLOAD_HOST : hostIP;
}

export interface ContainerProbeHandlers {
  onReadyChange(ready: boolean): void;
  /** Liveness failed `failureThreshold` times in a row; the run should be stopped. */
  onLivenessFailure(reason: string): void;
  /** Liveness failed only because the engine did not answer; its prober was restarted. */
  onEngineUnreachable(reason: string): void;
  onHandlerError(err: unknown): void;
}

export interface ContainerProbeOptions {
  engine: EngineClient;
  containerId: string;
  template: ContainerTemplate;
  /** The container's current address (refreshed by the runtime's polls). */
  address: () => string | null;
  handlers: ContainerProbeHandlers;
}

export class ContainerRunProbes {
  private liveness: RunProbes | null = null;
  private readiness: RunProbes | null = null;
  private stopped = false;

  constructor(private readonly opts: ContainerProbeOptions) {}

  /** Starts the probers of the template's probes (none when it has none). */
  start(): this {
    const { liveness, readiness } = this.opts.template.probes;
    if (readiness) {
      this.readiness = startRunProbes({ readiness }, this.target().target, {
        onReadyChange: (ready) => { if (!this.stopped) this.opts.handlers.onReadyChange(ready); },
        onLivenessFailure: () => {},
        onHandlerError: this.opts.handlers.onHandlerError,
      });
    }
    if (liveness) this.startLiveness(liveness);
    return this;
  }

  /** Stops every prober; no handler is called afterwards. Idempotent. */
  stop(): void {
    this.stopped = true;
    this.liveness?.stop();
    this.readiness?.stop();
  }

  private startLiveness(liveness: NonNullable<WorkloadProbes['liveness']>): void {
    const { target, engineUnreachable } = this.target();
    this.liveness = startRunProbes({ liveness }, target, {
      onReadyChange: () => {},
      onLivenessFailure: (reason) => {
        if (this.stopped) return;
        if (engineUnreachable()) {
          // Not the workload's fault: probe again from scratch (the runtime reports the outage).
          this.startLiveness(liveness);
          this.opts.handlers.onEngineUnreachable(reason);
          return;
        }
        // The run is about to be stopped: its readiness no longer matters.
        this.stop();
        this.opts.handlers.onLivenessFailure(reason);
      },
      onHandlerError: this.opts.handlers.onHandlerError,
    });
  }

  /**
   * A probe target of its own per prober, so each knows whether its own last exec got an answer
   * from the engine. An exec the engine has not answered when the check gives up counts as the
   * engine's fault: a command that merely hangs is killed and reported by `runExec` in time.
   */
  private target(): { target: ProbeTarget; engineUnreachable: () => boolean } {
    const { engine, containerId, template, address } = this.opts;
    let latestCall = 0;
    let unanswered = false;
    const exec: ProbeExecutor = async (command, timeoutMs) => {
      const call = ++latestCall;
      unanswered = true;
      try {
        const result = await engine.runExec(containerId, command, { timeoutMs, maxOutputBytes: PROBE_OUTPUT_BYTES });
        if (call === latestCall) unanswered = false;
        return result;
      } catch (err) {
        if (call === latestCall) unanswered = isEngineUnavailable(err);
        throw err;
      }
    };
    return {
      target: { exec, resolveEndpoint: (endpoint) => resolveProbeEndpoint(endpoint, address(), template) },
      engineUnreachable: () => unanswered,
    };
  }
}
