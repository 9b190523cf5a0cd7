import { isAbsolute, posix } from 'node:path';
import type { WorkloadTemplate } from '../../../protocol/index.js';

/**
 * What a container template may take from its node. A container is isolated from the node
 * except where its template reaches out of it: a hostPath volume puts a node directory inside
 * it (with root, it could rewrite /etc or steal the node's credential), hostNetwork puts it on
 * the node's own loopback and ports. Both are refused unless the node's owner allows them
 * (edgecore settings), whatever the cloud sends. Templates have no `privileged` setting, and
 * none is added to what the engine gets.
 */
export interface HostAccessPolicy {
  /** Directories (and what is below them) hostPath volumes may name. Empty: none. */
  hostPathPrefixes: readonly string[];
  /** Containers may share the node's network namespace. Device mappers always may: they need the broker on loopback. */
  hostNetwork: boolean;
  /** Never mountable, nor anything above or below them, whatever the prefixes say. */
  protectedPaths: readonly string[];
}

/** What no prefix can open: the whole node, its settings and kernel views, the engine's socket. */
export const ALWAYS_PROTECTED = ['/', '/etc', '/proc', '/sys', '/dev', '/boot', '/root', '/run/podman', '/var/run/docker.sock', '/run/docker.sock', '/var/run/podman'];

/** Pure: why the node refuses the operator's template, or null. Checks the template as sent, before edgecore adds its own mounts. */
export function hostAccessProblem(template: WorkloadTemplate, policy: HostAccessPolicy, realPath: (path: string) => string = (p) => p): string | null {
  if (template.runtime !== 'container') return null;
  if (template.hostNetwork === true && !policy.hostNetwork && template.deviceMapper === undefined) {
    return 'hostNetwork: refused on this node (the container would share the node\'s loopback and ports); the node allows it with --allow-host-network true';
  }
  for (const [index, volume] of template.volumes.entries()) {
    if (volume.hostPath === undefined) continue;
    // The engine follows symlinks: judged by where the path really leads.
    const path = posix.normalize(realPath(posix.normalize(volume.hostPath)));
    const field = `volumes[${index}].hostPath ${JSON.stringify(volume.hostPath)}${path !== posix.normalize(volume.hostPath) ? ` (really ${path})` : ''}`;
    const hit = protectedBy(path, policy.protectedPaths);
    if (hit !== undefined) return `${field}: refused: it ${path === hit ? 'is' : within(path, hit) ? 'is inside' : 'holds'} ${hit}, which no container may mount`;
    if (!policy.hostPathPrefixes.some((prefix) => within(path, prefix))) {
      return `${field}: refused on this node: hostPath volumes must be under a directory the node allows with --allow-host-paths (${policy.hostPathPrefixes.length === 0 ? 'none allowed' : `allowed: ${policy.hostPathPrefixes.join(', ')}`})`;
    }
  }
  return null;
}

/** The prefixes as given, normalized; each must be absolute and must not be protected. */
export function parseHostPathPrefixes(list: string, protectedPaths: readonly string[]): string[] {
  const prefixes = list.split(',').map((p) => p.trim()).filter((p) => p !== '');
  return prefixes.map((prefix) => {
    if (!isAbsolute(prefix)) throw new Error(`allowHostPaths: ${JSON.stringify(prefix)} is not an absolute path`);
    const normal = posix.normalize(prefix).replace(/\/+$/, '') || '/';
    const hit = protectedBy(normal, protectedPaths);
    if (hit !== undefined) throw new Error(`allowHostPaths: ${JSON.stringify(prefix)} overlaps ${hit}, which no container may mount`);
    return normal;
  });
}

/** The protected path `path` is, holds or sits inside (`/` only as itself: everything sits inside it). */
function protectedBy(path: string, protectedPaths: readonly string[]): string | undefined {
  return protectedPaths.find((p) => (p === '/' ? path === '/' : overlaps(path, p)));
}

function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

function overlaps(a: string, b: string): boolean {
  return within(a, b) || within(b, a);
}
