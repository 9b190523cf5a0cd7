import { chmodSync, copyFileSync, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artefactName } from '../../protocol/index.js';
import { freeLoopbackPort } from '../helpers/etcdCluster.js';
import { Fleet, ROOT, runToEnd, type Cloud } from '../helpers/fleet.js';
import { BUSYBOX, buildRelease, busyboxPath, elfMachine, installedPid, INSTALLER, pathWith, run, serveReleaseCopy, unameShim, type BuiltRelease } from '../helpers/installer.js';
import { makeReleaseKey, signSums } from '../helpers/releases.js';
import { cloudCaBundle, tlsApi } from '../helpers/tlsClient.js';
import { isAlive, waitFor } from '../helpers/wait.js';

/**
 * deploy/install.sh end to end: artefacts from the real artefact build, a real cloudcore over
 * HTTPS serving them, the join line `edgectl token create --print-join-command` prints, run by
 * dash with `uname -m` faked per architecture, each install into a temp --root with
 * --no-systemd. The x64 install starts and its edgecore joins; the ARM ones are installed and
 * checked (their binaries are for that machine) without starting. ARM builds need Debian's cross
 * compilers (.ci/run installs them). The tests run at the same time: each installs into its own
 * root, with its own node name, shim dir and (where it serves one) release copy.
 */
const VERSION = '0.22.0';
const which = (tool: string) => ['/usr/bin', '/bin', '/usr/local/bin'].some((d) => existsSync(join(d, tool)));
const noArm = !which('aarch64-linux-gnu-gcc') || !which('arm-linux-gnueabihf-gcc');
const ARM_SKIP = 'SKIPPED: the gcc-aarch64-linux-gnu / gcc-arm-linux-gnueabihf cross compilers are missing, so no ARM artefact can be built here';
const EDGE_SETTINGS = ['--set', 'statusPort=0', '--set', 'mqttPort=0', '--set', 'heartbeatSeconds=1'];

describe.concurrent('install.sh: one line installs and joins a node (real artefacts, real HTTPS cloudcore)', () => {
  const fleet = new Fleet();
  const roots: string[] = [];
  const servers: Server[] = [];
  let release: BuiltRelease;
  let cloud: Cloud;
  let caFile: string;

  beforeAll(async () => {
    const distDir = join(fleet.root, 'dist');
    release = await buildRelease(distDir, VERSION, noArm ? ['x64'] : ['x64', 'arm64', 'armv7'], fleet.root);
    copyFileSync(release.publicKeyFile, join(distDir, 'release-key.pub'));
    cloud = await fleet.startCloud({ tls: true, extra: ['--dist-dir', distDir] });
    caFile = join(fleet.root, 'cloud-ca.pem');
    writeFileSync(caFile, cloudCaBundle(cloud));
  }, 900_000);

  afterAll(async () => {
    for (const root of roots) if (installedPid(root)) await run(['dash', INSTALLER, '--uninstall', '--root', root]);
    for (const server of servers) server.close();
    await fleet.cleanup();
  });

  /** A scratch dir for a PATH shim (outside the install root, so `root` holds only what the installer made). */
  const shimDir = (name: string) => join(fleet.tempDir('ef-shim-'), name);
  const newRoot = () => { const r = fleet.tempDir('ef-root-'); roots.push(r); return r; };

  /** The line edgectl prints, with the test's --root/--no-systemd added to the installer's arguments. */
  async function joinLine(node: string, root: string, extra: string[] = [], mode = '--no-systemd'): Promise<string> {
    const printed = await runToEnd('edgectl', ['--server', cloud.url, '--token', cloud.token, '--certificate-authority', caFile, 'token', 'create', node, '--print-join-command']);
    expect(printed.code, printed.err).toBe(0);
    const line = printed.out.trim();
    expect(line.split('\n')).toHaveLength(1);
    expect(line).toContain('sha256sum -c');
    return line.replace('sh -s -- ', `sh -s -- --root ${root} ${mode} ${[...EDGE_SETTINGS, ...extra].join(' ')} `);
  }

  it('x86_64: the printed line checks the CA against the token, installs, starts edgecore, and the node is Ready', async () => {
    const root = newRoot();
    const started = Date.now();
    const shim = unameShim(shimDir('shim-x64'), 'x86_64');
    const res = await run(['dash', '-c', await joinLine('edge-x64', root)], { PATH: pathWith(shim) });
    const seconds = (Date.now() - started) / 1000;
    expect(res.code, res.out + res.err).toBe(0);
    expect(res.out).toContain("node 'edge-x64' joined; removed the join token");
    const opt = join(root, 'opt', 'edgefleet');
    expect(readlinkSync(join(opt, 'current'))).toBe(VERSION);
    expect(readFileSync(join(opt, VERSION, 'ARCH'), 'utf8').trim()).toBe('x64');
    expect(elfMachine(join(opt, VERSION, 'node', 'bin', 'node'))).toBe(0x3e);
    const config = readFileSync(join(root, 'etc', 'edgefleet', 'edgecore.yaml'), 'utf8');
    expect(config).toContain("node: 'edge-x64'");
    expect(config).toContain(`cloudUrl: '${cloud.url}'`);
    expect(config).toContain('keepWorkloadsOnExit: true');
    expect(config).not.toContain('joinTokenFile');
    expect(existsSync(join(root, 'etc', 'edgefleet', 'join-token'))).toBe(false);
    expect(statSync(join(root, 'var', 'lib', 'edgefleet')).mode & 0o777).toBe(0o700);
    expect(installedPid(root)).toBeDefined();
    const api = tlsApi(cloud);
    const node = await waitFor('edge-x64 Ready', async () => {
      const r = await api.call<{ status?: { phase?: string; agent?: { version?: string; arch?: string } } }>('GET', '/nodes/edge-x64');
      return r.body.status?.phase === 'Ready' ? r.body : undefined;
    });
    expect(node.status?.agent).toMatchObject({ version: VERSION, arch: 'x64' });
    process.stdout.write(`install.sh x64: installed, started and joined in ${seconds.toFixed(1)} s (artefact build ${release.seconds.toFixed(1)} s for ${release.arches.join(',')})\n`);

    // Run again: nothing to do, nothing touched.
    const before = { config: statSync(join(root, 'etc', 'edgefleet', 'edgecore.yaml')).mtimeMs, current: lstatSync(join(opt, 'current')).mtimeMs, pid: installedPid(root) };
    const again = await run(['dash', INSTALLER, '--cloud', cloud.url, '--ca-file', caFile, '--release-key', release.publicKeyFile, '--version', VERSION,
      '--node', 'edge-x64', '--root', root, '--no-systemd', ...EDGE_SETTINGS], { PATH: pathWith(shim) });
    expect(again.code, again.out + again.err).toBe(0);
    expect(again.out).toContain('already installed as asked: nothing changed');
    expect({ config: statSync(join(root, 'etc', 'edgefleet', 'edgecore.yaml')).mtimeMs, current: lstatSync(join(opt, 'current')).mtimeMs, pid: installedPid(root) }).toEqual(before);

    // Uninstall: stopped, /opt and /etc gone, the node's data kept; --purge takes that too.
    const pid = installedPid(root)!;
    const gone = await run(['dash', INSTALLER, '--uninstall', '--root', root]);
    expect(gone.code, gone.err).toBe(0);
    expect(installedPid(root)).toBeUndefined();
    await waitFor(`edgecore pid ${pid} gone`, () => !isAlive(pid));
    expect(existsSync(opt)).toBe(false);
    expect(existsSync(join(root, 'etc', 'edgefleet'))).toBe(false);
    expect(existsSync(join(root, 'var', 'lib', 'edgefleet', 'edge.db'))).toBe(true);
    expect((await run(['dash', INSTALLER, '--uninstall', '--purge', '--root', root])).code).toBe(0);
    expect(existsSync(join(root, 'var', 'lib', 'edgefleet'))).toBe(false);
  });

  it.skipIf(!BUSYBOX)(`with BusyBox alone (ash, tar, awk, sha256sum applets; curl and openssl beside): the line installs and the node joins${BUSYBOX ? '' : ' — SKIPPED: busybox is not installed (Debian package busybox-static)'}`, async () => {
    const root = newRoot();
    const path = `${unameShim(shimDir('shim-bb'), 'x86_64')}:${busyboxPath(shimDir('busybox-bin'))}`;
    const res = await run([BUSYBOX!, 'sh', '-c', await joinLine('edge-bb', root, ['--join-timeout', '20'])], { PATH: path });
    const log = join(root, 'var', 'log', 'edgefleet', 'edgecore.log');
    expect(res.code, res.out + res.err + (existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '')).toBe(0);
    expect(res.out).toContain("node 'edge-bb' joined; removed the join token");
    await waitFor('edge-bb Ready', async () => (await tlsApi(cloud).call<{ status?: { phase?: string } }>('GET', '/nodes/edge-bb')).body.status?.phase === 'Ready');
    const again = await run([BUSYBOX!, 'sh', INSTALLER, '--cloud', cloud.url, '--ca-file', caFile, '--release-key', release.publicKeyFile, '--version', VERSION,
      '--node', 'edge-bb', '--root', root, '--no-systemd', ...EDGE_SETTINGS], { PATH: path });
    expect(again.out, again.err).toContain('nothing changed');
    const pid = installedPid(root)!;
    expect((await run([BUSYBOX!, 'sh', INSTALLER, '--uninstall', '--purge', '--root', root], { PATH: path })).code).toBe(0);
    await waitFor(`edgecore pid ${pid} gone`, () => !isAlive(pid));
    for (const dir of ['opt/edgefleet', 'etc/edgefleet', 'var/lib/edgefleet']) expect(existsSync(join(root, dir)), dir).toBe(false);
  }, 120_000);

  for (const [machine, arch, elf] of [['aarch64', 'arm64', 0xb7], ['armv7l', 'armv7', 0x28]] as const) {
    // Into a root with systemd (an image being built): the unit from the artefact is written, nothing starts.
    it.skipIf(noArm)(`${machine}: installs the ${arch} artefact and its systemd unit into the root (not started: a ${arch} binary)${noArm ? ` — ${ARM_SKIP}` : ''}`, async () => {
      const root = newRoot();
      const line = await joinLine(`edge-${arch}`, root, [], '');
      const res = await run(['dash', '-c', line], { PATH: pathWith(unameShim(shimDir(`shim-${arch}`), machine)) });
      expect(res.code, res.out + res.err).toBe(0);
      const top = join(root, 'opt', 'edgefleet', VERSION);
      expect(readFileSync(join(top, 'ARCH'), 'utf8').trim()).toBe(arch);
      expect(elfMachine(join(top, 'node', 'bin', 'node'))).toBe(elf);
      expect(elfMachine(join(top, 'lib', 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'))).toBe(elf);
      // Not started, so not joined: the token waits, 0600, for the first start.
      expect(statSync(join(root, 'etc', 'edgefleet', 'join-token')).mode & 0o777).toBe(0o600);
      expect(installedPid(root)).toBeUndefined();
      expect(readFileSync(join(root, 'etc', 'systemd', 'system', 'edgecore.service'), 'utf8')).toBe(readFileSync(join(ROOT, 'deploy', 'systemd', 'edgecore.service'), 'utf8'));
      expect(res.out).toContain('--root: the unit is not enabled or started');
    });
  }

  it('plain HTTP cloud (--insecure-plain-http): the bare curl | sh line installs, and the node joins with a bearer credential', async () => {
    const plain = await fleet.startCloud({ dataDir: join(fleet.root, 'plain-cloud'), extra: ['--dist-dir', join(fleet.root, 'dist')] });
    const root = newRoot();
    const printed = await runToEnd('edgectl', ['--server', plain.url, '--token', plain.token, 'token', 'create', 'edge-plain', '--print-join-command']);
    expect(printed.out.trim()).toMatch(/^curl -fsSL http:\/\/127\.0\.0\.1:\d+\/install\.sh \| EDGEFLEET_TOKEN=[0-9a-f]+\.[0-9a-f]+ sh -s -- --node edge-plain$/);
    const line = printed.out.trim().replace('sh -s -- ', `sh -s -- --root ${root} --no-systemd ${EDGE_SETTINGS.join(' ')} `);
    const res = await run(['dash', '-c', line], { PATH: pathWith(unameShim(shimDir('shim-plain'), 'x86_64')) });
    expect(res.code, res.out + res.err).toBe(0);
    expect(res.err).toContain('plain HTTP');
    expect(existsSync(join(root, 'var', 'lib', 'edgefleet', 'node.credential'))).toBe(true);
    await waitFor('edge-plain Ready', async () => {
      const r = await fetch(`${plain.url}/api/v1/nodes/edge-plain`, { headers: { authorization: `Bearer ${plain.token}` } });
      return ((await r.json()) as { status?: { phase?: string } }).status?.phase === 'Ready';
    });
    expect((await run(['dash', INSTALLER, '--uninstall', '--purge', '--root', root])).code).toBe(0);
  });

  it('--cloud-url LIST: edgecore.yaml names every replica, and the node joins past one that is down; a bad entry is refused', async () => {
    const root = newRoot();
    const replicas = `https://127.0.0.1:${await freeLoopbackPort()},${cloud.url}`;
    const shim = unameShim(shimDir('shim-replicas'), 'x86_64');
    const res = await run(['dash', '-c', await joinLine('edge-replicas', root, ['--cloud-url', replicas])], { PATH: pathWith(shim) });
    expect(res.code, res.out + res.err).toBe(0);
    expect(readFileSync(join(root, 'etc', 'edgefleet', 'edgecore.yaml'), 'utf8')).toContain(`cloudUrl: '${replicas}'`);
    await waitFor('edge-replicas Ready', async () => (await tlsApi(cloud).call<{ status?: { phase?: string } }>('GET', '/nodes/edge-replicas')).body.status?.phase === 'Ready');
    expect((await run(['dash', INSTALLER, '--uninstall', '--purge', '--root', root])).code).toBe(0);

    const refused = await run(['dash', INSTALLER, '--cloud-url', `${cloud.url},ftp://cloud.example`, '--root', newRoot()]);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toContain("--cloud-url: 'ftp://cloud.example' is not http(s)://host:port");
  });

  it('refuses an unknown architecture, naming it, and installs nothing', async () => {
    const root = newRoot();
    const res = await run(['dash', '-c', await joinLine('edge-mips', root)], { PATH: pathWith(unameShim(shimDir('shim-mips'), 'mips64')) });
    expect(res.code).not.toBe(0);
    expect(res.err).toContain("unsupported architecture 'mips64'");
    expect(readdirSync(root)).toEqual([]);
  });

  it('refuses an OpenSSL older than 3.0 (no Ed25519 verify), saying so rather than "bad signature", and installs nothing', async () => {
    const root = newRoot();
    const shim = unameShim(shimDir('shim-ossl'), 'x86_64');
    // OpenSSL 1.1.1 as Debian 11 ships it: pkeyutl without -rawin.
    writeFileSync(join(shim, 'openssl'), "#!/bin/sh\ncase \"$1\" in version) echo 'OpenSSL 1.1.1w  11 Sep 2023' ;; pkeyutl) echo ' -in infile  Input file'; exit 1 ;; *) exec /usr/bin/openssl \"$@\" ;; esac\n");
    chmodSync(join(shim, 'openssl'), 0o755);
    const res = await run(['dash', INSTALLER, '--cloud', cloud.url, '--ca-file', caFile, '--release-key', release.publicKeyFile, '--version', VERSION, '--token', '0a1b.c2d3',
      '--node', 'edge-ossl', '--root', root, '--no-systemd'], { PATH: pathWith(shim) });
    expect(res.code).not.toBe(0);
    expect(res.err).toContain('OpenSSL 1.1.1w  11 Sep 2023 cannot verify Ed25519 signatures (no pkeyutl -rawin): OpenSSL 3.0 or later is needed');
    expect(readdirSync(root)).toEqual([]);
  });

  it('refuses a glibc older than 2.34 and a C library that is not glibc, naming it, and installs nothing', async () => {
    for (const [libc, expected] of [
      ['glibc 2.31', 'glibc 2.31 is too old: EdgeFleet\'s artefacts need glibc 2.34 or later'],
      ['', 'this node\'s C library is not glibc (getconf GNU_LIBC_VERSION: nothing)'],
    ] as const) {
      const root = newRoot();
      const shim = unameShim(shimDir(`shim-libc-${libc.length}`), 'x86_64');
      // getconf as Debian 11 (glibc 2.31) or Alpine (musl: no GNU_LIBC_VERSION) answers.
      writeFileSync(join(shim, 'getconf'), libc ? `#!/bin/sh\necho '${libc}'\n` : '#!/bin/sh\nexit 1\n');
      chmodSync(join(shim, 'getconf'), 0o755);
      const res = await run(['dash', INSTALLER, '--cloud', cloud.url, '--ca-file', caFile, '--release-key', release.publicKeyFile, '--version', VERSION, '--token', '0a1b.c2d3',
        '--node', 'edge-libc', '--root', root, '--no-systemd'], { PATH: pathWith(shim) });
      expect(res.code).not.toBe(0);
      expect(res.err).toContain(expected);
      expect(readdirSync(root)).toEqual([]);
    }
  });

  it('refuses a cloud whose CA does not match the token\'s pin, and installs nothing', async () => {
    const root = newRoot();
    const wrongPin = (await tlsApi(cloud).token('edge-pin')).replace(/^EF1-[0-9a-f]{64}-/, `EF1-${'0'.repeat(64)}-`);
    const res = await run(['dash', INSTALLER, '--cloud', cloud.url, '--release-key', release.publicKeyFile, '--version', VERSION, '--token', wrongPin,
      '--node', 'edge-pin', '--root', root, '--no-systemd'], { PATH: pathWith(unameShim(shimDir('shim-pin'), 'x86_64')) });
    expect(res.code).not.toBe(0);
    expect(res.err).toContain('does not match the pin in the join token');
    expect(readdirSync(root)).toEqual([]);
  });

  const tampered: [string, (dir: string) => void, string][] = [
    ['a corrupted tarball (one byte flipped)', (dir) => {
      const file = join(dir, artefactName(VERSION, 'x64'));
      const bytes = readFileSync(file);
      bytes[bytes.length >> 1] ^= 0xff;
      writeFileSync(file, bytes);
    }, 'bad checksum'],
    ['SHA256SUMS signed by another key', (dir) => {
      writeFileSync(join(dir, 'SHA256SUMS.sig'), signSums(readFileSync(join(dir, 'SHA256SUMS')), makeReleaseKey()));
    }, 'bad signature'],
    ['SHA256SUMS edited after signing (another sum for the tarball)', (dir) => {
      const sums = readFileSync(join(dir, 'SHA256SUMS'), 'utf8');
      writeFileSync(join(dir, 'SHA256SUMS'), sums.replace(/^[0-9a-f]{64}/, 'f'.repeat(64)));
    }, 'bad signature'],
  ];
  for (const [what, edit, refusal] of tampered) {
    it(`refuses ${what} from a server that serves it, and installs nothing`, async () => {
      const root = newRoot();
      const copy = await serveReleaseCopy(release.dir, fleet.tempDir('ef-copy-'), VERSION, edit);
      servers.push(copy.server);
      const res = await run(['dash', INSTALLER, '--cloud', copy.url, '--release-key', release.publicKeyFile, '--version', VERSION, '--token', '0a1b.c2d3',
        '--node', 'edge-bad', '--root', root, '--no-systemd'], { PATH: pathWith(unameShim(shimDir('shim-bad'), 'x86_64')) });
      expect(res.code).not.toBe(0);
      expect(res.err).toContain(refusal);
      expect(res.err).toContain('nothing installed');
      expect(readdirSync(root)).toEqual([]);
    });
  }

  const hasSystemd = existsSync('/run/systemd/system');
  it.skipIf(hasSystemd)(`refuses to install without systemd unless --no-systemd, and says so${hasSystemd ? ' — SKIPPED: this machine runs systemd, and the check would install for real' : ''}`, async () => {
    const res = await run(['dash', INSTALLER, '--cloud', cloud.url, '--release-key', release.publicKeyFile, '--version', VERSION, '--token', '0a1b.c2d3', '--node', 'edge-nosd']);
    expect(res.code).not.toBe(0);
    expect(res.err).toContain('systemd is not running on this machine: run again with --no-systemd');
    expect(existsSync('/opt/edgefleet')).toBe(false);
  });
});
