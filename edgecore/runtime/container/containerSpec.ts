import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ContainerTemplateSchema, type ContainerTemplate } from '../../../protocol/index.js';
import { stableStringify } from '../processRuntime.js';
import type { ContainerCreateBody, PortBinding } from './engineClient.js';

/**
 * Pure mapping between EdgeFleet workloads and engine containers: names, labels, the create
 * body, and the image decision. The engine is the runtime's memory: every container it owns
 * carries labels that say which node, workload, generation and template it runs, so a restarted
 * edgecore can find and adopt them without a local record.
 */

export const LABELS = Object.freeze({
  owned: 'io.edgefleet.owned',
  node: 'io.edgefleet.node',
  workload: 'io.edgefleet.workload',
  generation: 'io.edgefleet.generation',
  templateHash: 'io.edgefleet.template-hash',
  /** The template without env values, so an adopted container is supervised before any `ensure`. */
  template: 'io.edgefleet.template',
});

/** sha256 of the template with sorted keys: equal templates hash equal whatever their key order. */
export function templateHash(template: ContainerTemplate): string {
  return createHash('sha256').update(stableStringify(template)).digest('hex');
}

/**
 * `ef-<node>-<workload>-g<generation>`. The node is in the name so several edgecores (test
 * fleets, say) can share one engine; names are unique per engine, labels are the source of truth.
 */
export function containerName(nodeName: string, workload: string, generation: number): string {
  return `ef-${nodeName}-${workload}-g${generation}`;
}

export function containerLabels(nodeName: string, workload: string, generation: number, template: ContainerTemplate): Record<string, string> {
  return {
    [LABELS.owned]: 'true',
    [LABELS.node]: nodeName,
    [LABELS.workload]: workload,
    [LABELS.generation]: String(generation),
    [LABELS.templateHash]: templateHash(template),
    // Env values left out: they may come from secrets, and labels are shown to anyone who can
    // inspect containers. The container's own config keeps the env; `ensure` restores it here.
    [LABELS.template]: stableStringify({ ...template, env: {} }),
  };
}

/** Label filters that select the containers of `nodeName` (and of one workload, if given). */
export function ownedFilters(nodeName: string, workload?: string): string[] {
  const filters = [`${LABELS.owned}=true`, `${LABELS.node}=${nodeName}`];
  if (workload !== undefined) filters.push(`${LABELS.workload}=${workload}`);
  return filters;
}

export interface OwnedContainerInfo {
  workload: string;
  generation: number;
  templateHash: string;
  /** Null when the label is missing or no longer parses (then only `ensure` can adopt it). */
  template: ContainerTemplate | null;
}

/** What an owned container's labels say, or null when it is not one of ours. */
export function readOwnedLabels(labels: Record<string, string>): OwnedContainerInfo | null {
  const workload = labels[LABELS.workload];
  const generation = Number(labels[LABELS.generation]);
  const hash = labels[LABELS.templateHash];
  if (labels[LABELS.owned] !== 'true' || !workload || !Number.isInteger(generation) || generation < 0 || !hash) return null;
  let template: ContainerTemplate | null = null;
  const raw = labels[LABELS.template];
  if (raw !== undefined) {
    try {
      const parsed = ContainerTemplateSchema.safeParse(JSON.parse(raw));
      // The label leaves env out, so it cannot match the hash; `ensure` brings the full template.
      if (parsed.success) template = parsed.data;
    } catch {
      template = null;
    }
  }
  return { workload, generation, templateHash: hash, template };
}

/** Host directory of an app's data volume: `<dataVolumeDir>/<app>/<volume>`. */
export function dataVolumePath(dataVolumeDir: string, app: string, volume: string): string {
  return join(dataVolumeDir, app, volume);
}

export interface CreatePlan {
  body: ContainerCreateBody;
  /** Data-volume directories to create before the container. */
  directories: string[];
}

/**
 * The engine's create body for a template. Like Kubernetes, `command` replaces the image's
 * ENTRYPOINT and `args` its CMD. A port is published on the host only when it names a
 * `hostPort` (a port without one is reachable on the container network only). The engine's own
 * restart policy is "no": the edge supervises, so back-off and status work as for processes.
 */
export function buildCreatePlan(opts: {
  template: ContainerTemplate;
  labels: Record<string, string>;
  app: string;
  dataVolumeDir: string;
}): CreatePlan {
  const { template } = opts;
  const directories: string[] = [];
  const binds = template.volumes.map((volume) => {
    let source: string;
    if (volume.hostPath !== undefined) source = volume.hostPath;
    else {
      source = dataVolumePath(opts.dataVolumeDir, opts.app, volume.dataVolume ?? 'data');
      directories.push(source);
    }
    return `${source}:${volume.mountPath}${volume.readOnly ? ':ro' : ''}`;
  });
  const exposed: Record<string, Record<string, never>> = {};
  const published: Record<string, PortBinding[]> = {};
  for (const port of template.ports) {
    const key = `${port.containerPort}/${port.protocol}`;
    exposed[key] = {};
    if (port.hostPort !== undefined) {
      (published[key] ??= []).push({ HostIp: port.hostIP ?? '', HostPort: String(port.hostPort) });
    }
  }
  const body: ContainerCreateBody = {
    Image: template.image,
    Env: Object.entries(template.env).map(([key, value]) => `${key}=${value}`),
    Labels: opts.labels,
    HostConfig: { RestartPolicy: { Name: 'no' } },
  };
  if (template.command !== undefined) body.Entrypoint = template.command;
  if (template.args !== undefined) body.Cmd = template.args;
  if (template.workingDir !== undefined) body.WorkingDir = template.workingDir;
  if (Object.keys(exposed).length > 0) body.ExposedPorts = exposed;
  const host = body.HostConfig ?? {};
  if (binds.length > 0) host.Binds = binds;
  if (Object.keys(published).length > 0) host.PortBindings = published;
  if (template.hostNetwork === true) host.NetworkMode = 'host';
  if (template.resources.memoryBytes !== undefined) host.Memory = template.resources.memoryBytes;
  if (template.resources.cpus !== undefined) host.NanoCpus = Math.round(template.resources.cpus * 1e9);
  return { body, directories };
}

/** What to do about the image before creating a container. */
export type ImageAction = 'use' | 'pull' | 'load' | 'fail';

/**
 * - `Never`: use the local image, or load `imageArchive` (node-local, not a pull), else fail.
 * - `IfNotPresent`: use it if present, else load the archive if there is one, else pull.
 * - `Always`: pull (the caller falls back to a local copy or the archive when the pull fails,
 *   because an edge site is often offline and a stale image beats no workload).
 */
export function imageAction(policy: ContainerTemplate['imagePullPolicy'], present: boolean, hasArchive: boolean): ImageAction {
  if (policy === 'Always') return 'pull';
  if (present) return 'use';
  if (hasArchive) return 'load';
  return policy === 'Never' ? 'fail' : 'pull';
}

export const IMAGE_NEVER_PULL_ERROR = 'image not present and imagePullPolicy is Never';

/** How a container's run ended, for `lastError`. */
export function describeContainerExit(exitCode: number | null, oomKilled: boolean, engineError: string): string {
  const base = exitCode === null ? 'container ended' : `exited with code ${exitCode}`;
  if (oomKilled) return `${base} (killed: out of memory)`;
  if (engineError !== '') return `${base} (${engineError})`;
  return base;
}

/** Engine timestamps are RFC 3339 with nanoseconds; the zero time means "never". */
export function engineTimeMs(value: string): number | null {
  if (value === '' || value.startsWith('0001-01-01')) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

/**
 * Which running containers to adopt: per workload the newest generation whose labels carry a
 * usable template; other running containers of the same workload (left by a crash in the middle
 * of a replacement) are duplicates to remove.
 */
export function chooseAdoptions(running: { Id: string; Labels: Record<string, string> }[]): { keep: Map<string, string>; duplicates: string[] } {
  const byWorkload = new Map<string, { id: string; generation: number }[]>();
  for (const summary of running) {
    const info = readOwnedLabels(summary.Labels);
    if (info === null || info.template === null) continue;
    const list = byWorkload.get(info.workload) ?? [];
    list.push({ id: summary.Id, generation: info.generation });
    byWorkload.set(info.workload, list);
  }
  const keep = new Map<string, string>();
  const duplicates: string[] = [];
  for (const [workload, list] of byWorkload) {
    list.sort((a, b) => b.generation - a.generation || (a.id < b.id ? -1 : 1));
    const [newest, ...rest] = list;
    if (newest) keep.set(workload, newest.id);
    duplicates.push(...rest.map((c) => c.id));
  }
  return { keep, duplicates };
}
