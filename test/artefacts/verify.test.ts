import { execFile } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ARCHES, TOOLCHAINS, type Arch } from '../../arm-builds/targets.js';
import { ROOT } from '../helpers/fleet.js';

/**
 * Issue 22, artefacts: builds the edge release once (runtimes and compiled addons cached in
 * dist-artefacts/.cache/, so only the first run on a machine compiles), checks the release
 * directory against the shared contract, and runs arm-builds/verify.sh for every architecture:
 * x64 natively, arm64 and armv7 under qemu-user-static against a real x64 cloudcore. An
 * architecture whose emulator or cross toolchain is missing is SKIPPED with the reason.
 * The checks after the build run at the same time: each verify.sh has its own temp dir,
 * cloudcore, node name and ports, and most of an emulated run is waiting on one process.
 */

const run = promisify(execFile);
// Not the checkout's 0.1.0: the bundles must report what the build was told (esbuild define),
// not protocol/version.ts's fallback.
const VERSION = '9.9.9-verify';
const OUT = join(ROOT, 'dist-artefacts', 'test-verify');

function onPath(bin: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, bin)));
}

const COMMON_TOOLS = ['curl', 'jq', 'openssl', 'sha256sum', 'tar', 'mosquitto_pub', 'npm'];

/** Why `arch` cannot be built and verified here, or null when it can. */
function skipReason(arch: Arch): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `the cloud side and the x64 artefact run on linux/x64 only (this is ${process.platform}/${process.arch})`;
  const missing = COMMON_TOOLS.filter((t) => !onPath(t));
  const tools = TOOLCHAINS[arch];
  if (tools.cc !== undefined && tools.cxx !== undefined) missing.push(...[tools.cc, tools.cxx].filter((t) => !onPath(t)));
  if (tools.qemu !== undefined) {
    if (!onPath(tools.qemu.binary)) missing.push(`${tools.qemu.binary} (qemu-user-static)`);
    if (!existsSync(join(tools.qemu.sysroot, 'lib'))) missing.push(`${tools.qemu.sysroot}/lib (the cross toolchain's libc)`);
  }
  return missing.length === 0 ? null : `missing ${missing.join(', ')}`;
}

const reasons = Object.fromEntries(ARCHES.map((a) => [a, skipReason(a)])) as Record<Arch, string | null>;
const buildable = ARCHES.filter((a) => reasons[a] === null);
for (const arch of ARCHES) if (reasons[arch] !== null) console.warn(`[edge artefacts] ${arch} SKIPPED: ${reasons[arch]}`);

interface BuildReport { artefacts: { arch: Arch; file: string; bytes: number; sha256: string; seconds: number; addon: string }[]; bundles: { name: string; bytes: number }[] }

describe.skipIf(buildable.length === 0).concurrent(`edge artefacts${buildable.length === 0 ? ' — SKIPPED: no architecture can be built here' : ''}`, () => {
  let report: BuildReport;

  beforeAll(async () => {
    const started = Date.now();
    const { stdout } = await run(process.execPath, [join(ROOT, 'dist', 'arm-builds', 'build.js'), '--version', VERSION, '--arch', buildable.join(','), '--out', OUT],
      { cwd: ROOT, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, EDGEFLEET_SIGNING_KEY_FILE: '' } });
    report = JSON.parse(stdout.trim().split('\n').at(-1)!) as BuildReport;
    console.log(`[edge artefacts] built ${buildable.join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${report.artefacts.map((a) => `${a.arch} ${(a.bytes / 1048576).toFixed(1)} MiB ${a.seconds.toFixed(0)} s (addon ${a.addon})`).join('; ')}`);
  }, 1_200_000);

  it('the release directory follows the contract: SHA256SUMS, its Ed25519 signature, the public key, one tarball per arch', async () => {
    const sums = readFileSync(join(OUT, 'SHA256SUMS'));
    const lines = sums.toString().trimEnd().split('\n');
    expect(lines).toHaveLength(buildable.length);
    for (const arch of buildable) {
      const file = `edgefleet-edge-${VERSION}-linux-${arch}.tar.gz`;
      const line = lines.find((l) => l.endsWith(`  ${file}`));
      expect(line).toMatch(/^[0-9a-f]{64} {2}\S+$/);
      expect(line!.slice(0, 64)).toBe(report.artefacts.find((a) => a.arch === arch)!.sha256);
    }
    const signature = Buffer.from(readFileSync(join(OUT, 'SHA256SUMS.sig'), 'utf8').trim(), 'base64');
    const key = createPublicKey(readFileSync(join(OUT, 'release-key.pub'), 'utf8'));
    expect(key.asymmetricKeyType).toBe('ed25519');
    expect(verify(null, sums, key, signature)).toBe(true);
    // One flipped byte of SHA256SUMS and the signature no longer holds.
    const tampered = Buffer.from(sums);
    tampered[0] = tampered[0] === 0x30 ? 0x31 : 0x30;
    expect(verify(null, tampered, key, signature)).toBe(false);

    const top = `edgefleet-edge-${VERSION}-linux-${buildable[0]}`;
    const { stdout } = await run('tar', ['-tzf', join(OUT, `${top}.tar.gz`)], { maxBuffer: 16 * 1024 * 1024 });
    const entries = stdout.trim().split('\n');
    expect(entries.every((e) => e === `${top}/` || e.startsWith(`${top}/`))).toBe(true);
    for (const path of ['VERSION', 'ARCH', 'node/bin/node', 'lib/edgecore.mjs', 'lib/edgectl.mjs', 'lib/mapper.mjs', 'lib/page/index.html',
      'lib/node_modules/better-sqlite3/build/Release/better_sqlite3.node', 'lib/node_modules/bindings/bindings.js',
      'lib/node_modules/file-uri-to-path/index.js', 'lib/node_modules/yaml/dist/index.js', 'bin/edgecore', 'bin/edgectl', 'bin/mapper', 'share/release-key.pub']) {
      expect(entries, path).toContain(`${top}/${path}`);
    }
    const { stdout: pub } = await run('tar', ['-xzOf', join(OUT, `${top}.tar.gz`), `${top}/share/release-key.pub`]);
    expect(pub).toBe(readFileSync(join(OUT, 'release-key.pub'), 'utf8'));
  });

  for (const arch of ARCHES) {
    const reason = reasons[arch];
    it.skipIf(reason !== null)(`verify.sh ${arch}: joins, runs a workload, serves the broker, keeps state across a restart${reason !== null ? ` — SKIPPED: ${reason}` : ''}`, async () => {
      const started = Date.now();
      const result = await run('bash', [join(ROOT, 'arm-builds', 'verify.sh'), arch, OUT], { cwd: ROOT, env: { ...process.env, VERIFY_START_TIMEOUT: '150' }, maxBuffer: 4 * 1024 * 1024 })
        .catch((err: { stdout?: string; stderr?: string; message: string }) => ({ stdout: err.stdout ?? '', stderr: `${err.stderr ?? ''}\n${err.message}` }));
      const lines = result.stdout.trim().split('\n');
      console.log(`[edge artefacts] verify.sh ${arch} in ${((Date.now() - started) / 1000).toFixed(1)} s\n${lines.join('\n')}`);
      expect(lines.filter((l) => l.startsWith('FAIL')), result.stderr).toEqual([]);
      for (const check of ['signature', 'layout', 'version', 'join', 'page', 'os/arch', 'workload', 'broker', 'mapper', 'restart', 'relink']) {
        expect(lines.some((l) => l.startsWith(`PASS ${check} `)), `${check} passed`).toBe(true);
      }
      expect(lines.at(-1)).toBe(`verify ${arch}: ALL PASSED`);
    }, 600_000);
  }
});
