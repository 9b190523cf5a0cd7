import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/fleet.js';
import { isAlive, waitFor } from '../helpers/wait.js';

/**
 * deploy/edge/edgefleet-loader run by dash (the POSIX sh of Debian's /bin/sh) over a home laid
 * out as on a node. Each "version" is a small sh program in the place of edgecore that writes
 * what it saw and exits with the code the case needs: the loader's contract is about exit codes
 * and links, which is what these show; the real agents are in the end-to-end upgrade tests.
 */

const LOADER = join(ROOT, 'deploy', 'edge', 'edgefleet-loader');
const homes: string[] = [];
afterEach(() => { for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true }); });

function home(): string {
  const h = mkdtempSync(join(tmpdir(), 'ef-loader-'));
  homes.push(h);
  return h;
}

/** A version whose bin/edgecore runs `body` (sh), after noting its version, args and loader env in `ran`. */
function version(h: string, v: string, body: string): void {
  mkdirSync(join(h, v, 'bin'), { recursive: true });
  const script = `#!/bin/sh\nprintf '%s %s %s %s\\n' "${v}" "$EDGEFLEET_LOADER" "$EDGEFLEET_HOME" "$*" >> "${join(h, 'ran')}"\n${body}\n`;
  writeFileSync(join(h, v, 'bin', 'edgecore'), script);
  chmodSync(join(h, v, 'bin', 'edgecore'), 0o755);
}

function runLoader(h: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn('dash', [LOADER, ...args], {
    env: { PATH: process.env.PATH, EDGEFLEET_HOME: h, EDGEFLEET_LOADER_SUPERVISOR: 'self', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, stderr: () => stderr };
}

const ran = (h: string): string[] => existsSync(join(h, 'ran')) ? readFileSync(join(h, 'ran'), 'utf8').trim().split('\n') : [];

describe('edgefleet-loader', () => {
  it('rolls back at once when the new version exits non-zero at start, and says why for the old agent', async () => {
    const h = home();
    version(h, '1.0.0', 'exit 0');
    version(h, '2.0.0', 'exit 1');
    symlinkSync('2.0.0', join(h, 'current'));
    symlinkSync('2.0.0', join(h, 'new'));
    symlinkSync('1.0.0', join(h, 'old'));
    const loader = runLoader(h, ['--config', 'a b.yaml']);
    expect(await loader.exited).toBe(0);
    expect(ran(h)).toEqual([`2.0.0 1 ${h} --config a b.yaml`, `1.0.0 1 ${h} --config a b.yaml`]);
    expect(readlinkSync(join(h, 'current'))).toBe('1.0.0');
    expect(readlinkSync(join(h, 'broken'))).toBe('2.0.0');
    expect(existsSync(join(h, 'new'))).toBe(false);
    expect(readFileSync(join(h, 'rollback-reason'), 'utf8')).toContain('version 2.0.0 exited with code 1 before it committed; the loader went back to 1.0.0');
  });

  it('starts the new version at once after exit 75 (current switched), with the same arguments', async () => {
    const h = home();
    // The old agent switches the links itself, as edgecore/upgrade does, then asks for the restart.
    version(h, '1.0.0', `ln -s 2.0.0 "${h}/new"; ln -s 1.0.0 "${h}/old"; ln -sfn 2.0.0 "${h}/current"; exit 75`);
    version(h, '2.0.0', 'exit 0');
    symlinkSync('1.0.0', join(h, 'current'));
    const started = Date.now();
    const loader = runLoader(h, ['--node', 'n1']);
    expect(await loader.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(900); // no back-off between the two
    expect(ran(h)).toEqual([`1.0.0 1 ${h} --node n1`, `2.0.0 1 ${h} --node n1`]);
    expect(readlinkSync(join(h, 'current'))).toBe('2.0.0');
  });

  it('passes SIGTERM to edgecore and exits 0 after it, leaving nothing running', async () => {
    const h = home();
    version(h, '1.0.0', `trap 'echo term >> "${h}/ran"; exit 0' TERM; echo $$ > "${h}/pid"; while :; do sleep 0.1; done`);
    symlinkSync('1.0.0', join(h, 'current'));
    const loader = runLoader(h, []);
    const pid = await waitFor('edgecore pid', () => (existsSync(join(h, 'pid')) ? Number(readFileSync(join(h, 'pid'), 'utf8')) : 0));
    loader.child.kill('SIGTERM');
    expect(await loader.exited).toBe(0);
    expect(ran(h)[1]).toBe('term');
    expect(isAlive(pid)).toBe(false);
  });

  it('without systemd restarts a crashed agent with back-off; under systemd exits with its code for systemd to restart', async () => {
    const h = home();
    version(h, '1.0.0', `n=$(wc -l < "${h}/ran"); [ "$n" -ge 2 ] && exit 0; exit 3`);
    symlinkSync('1.0.0', join(h, 'current'));
    const started = Date.now();
    expect(await runLoader(h, []).exited).toBe(0);
    expect(ran(h)).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900); // the 1 s back-off

    const h2 = home();
    version(h2, '1.0.0', 'exit 3');
    symlinkSync('1.0.0', join(h2, 'current'));
    const underSystemd = runLoader(h2, [], { EDGEFLEET_LOADER_SUPERVISOR: '', INVOCATION_ID: 'abc' });
    expect(await underSystemd.exited).toBe(3);
    expect(ran(h2)).toHaveLength(1);
  });

  it('a pending upgrade with no old version to go back to is left as it is, and the loader says so', async () => {
    const h = home();
    version(h, '2.0.0', 'exit 1');
    symlinkSync('2.0.0', join(h, 'current'));
    symlinkSync('2.0.0', join(h, 'new'));
    const loader = runLoader(h, [], { EDGEFLEET_LOADER_SUPERVISOR: 'systemd' });
    expect(await loader.exited).toBe(1);
    expect(loader.stderr()).toContain('no old version to go back to');
    expect(readlinkSync(join(h, 'current'))).toBe('2.0.0');
  });
});
