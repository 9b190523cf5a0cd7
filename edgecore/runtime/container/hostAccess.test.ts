import { describe, expect, it } from 'vitest';
import { ContainerTemplateSchema, ProcessTemplateSchema } from '../../../protocol/index.js';
import { ALWAYS_PROTECTED, hostAccessProblem, parseHostPathPrefixes, type HostAccessPolicy } from './hostAccess.js';

const protectedPaths = [...ALWAYS_PROTECTED, '/var/lib/edgefleet', '/run/podman/podman.sock'];
const policy = (prefixes: string[] = [], hostNetwork = false): HostAccessPolicy => ({ hostPathPrefixes: prefixes, hostNetwork, protectedPaths });
const container = (fields: Record<string, unknown>) => ContainerTemplateSchema.parse({ runtime: 'container', image: 'app:1', ...fields });
const mount = (hostPath: string) => container({ volumes: [{ hostPath, mountPath: '/data' }] });

describe('hostAccessProblem', () => {
  it('refuses every hostPath by default, naming the volume and the setting', () => {
    expect(hostAccessProblem(mount('/srv/data'), policy())).toBe('volumes[0].hostPath "/srv/data": refused on this node: hostPath volumes must be under a directory the node allows with --allow-host-paths (none allowed)');
  });

  it('allows a path under an allowed prefix, and not a sibling that merely starts the same', () => {
    expect(hostAccessProblem(mount('/srv/data/models'), policy(['/srv/data']))).toBeNull();
    expect(hostAccessProblem(mount('/srv/data'), policy(['/srv/data']))).toBeNull();
    expect(hostAccessProblem(mount('/srv/database'), policy(['/srv/data']))).toMatch(/refused on this node/);
  });

  it('never allows /, /etc, the engine socket or the data dir, nor what holds or sits inside them', () => {
    for (const [path, why] of [
      ['/', 'is /'], ['/etc/shadow', 'is inside /etc'], ['/run/podman/podman.sock', 'is inside /run/podman'],
      ['/var/lib/edgefleet/node.credential', 'is inside /var/lib/edgefleet'], ['/var/lib', 'holds /var/lib/edgefleet'],
    ] as const) {
      expect(hostAccessProblem(mount(path), policy(['/var', '/run', '/srv']))).toContain(`it ${why}`);
    }
  });

  it('judges a symlink by where it leads', () => {
    const problem = hostAccessProblem(mount('/srv/data/etc-link'), policy(['/srv/data']), (p) => (p === '/srv/data/etc-link' ? '/etc' : p));
    expect(problem).toBe('volumes[0].hostPath "/srv/data/etc-link" (really /etc): refused: it is /etc, which no container may mount');
  });

  it('refuses hostNetwork unless allowed; device mappers always have it; process templates are not its business', () => {
    expect(hostAccessProblem(container({ hostNetwork: true }), policy())).toMatch(/^hostNetwork: refused on this node.*--allow-host-network true/);
    expect(hostAccessProblem(container({ hostNetwork: true }), policy([], true))).toBeNull();
    expect(hostAccessProblem(container({ hostNetwork: true, deviceMapper: { protocol: 'modbus' } }), policy())).toBeNull();
    expect(hostAccessProblem(ProcessTemplateSchema.parse({ runtime: 'process', command: 'x' }), policy())).toBeNull();
  });
});

describe('parseHostPathPrefixes', () => {
  it('normalizes the list and refuses relative or protected entries by name', () => {
    expect(parseHostPathPrefixes(' /srv/data/ , /opt/models', protectedPaths)).toEqual(['/srv/data', '/opt/models']);
    expect(parseHostPathPrefixes('', protectedPaths)).toEqual([]);
    expect(() => parseHostPathPrefixes('data', protectedPaths)).toThrow('allowHostPaths: "data" is not an absolute path');
    expect(() => parseHostPathPrefixes('/var', protectedPaths)).toThrow(/allowHostPaths: "\/var" overlaps \/var\/.*, which no container may mount/);
    expect(() => parseHostPathPrefixes('/', protectedPaths)).toThrow(/overlaps \//);
  });
});
