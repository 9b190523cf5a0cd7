import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { Fleet, ROOT } from '../helpers/fleet.js';

/**
 * deploy/systemd/*.service checked by systemd itself: `systemd-analyze verify` in a scratch root
 * holding the unit, the targets it names and the program its ExecStart runs (verify refuses a
 * missing one), so nothing on this machine is touched. Any warning (an unknown key, a value it
 * ignores) fails the test, as systemd would otherwise skip that line silently.
 */
const ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));
const SKIP = ANALYZE ? '' : ' — SKIPPED: systemd-analyze is not installed (Debian package systemd)';
const TARGETS = '/lib/systemd/system';

async function verify(fleet: Fleet, unit: string, program: string): Promise<{ code: number; err: string; text: string }> {
  const root = fleet.tempDir('ef-unit-');
  for (const dir of ['etc/systemd/system', 'usr/lib/systemd/system', 'tmp']) mkdirSync(join(root, dir), { recursive: true });
  for (const t of readdirSync(TARGETS).filter((n) => n.endsWith('.target'))) copyFileSync(join(TARGETS, t), join(root, 'usr/lib/systemd/system', t));
  const text = readFileSync(join(ROOT, 'deploy', 'systemd', unit), 'utf8');
  writeFileSync(join(root, 'etc/systemd/system', unit), text);
  // The program ExecStart names, as a script (edgecore's through the `current` link, as installed).
  const real = program.replace('/current/', '/0.0.0/');
  mkdirSync(join(root, real, '..'), { recursive: true });
  writeFileSync(join(root, real), '#!/bin/sh\n');
  chmodSync(join(root, real), 0o755);
  if (real !== program) symlinkSync('0.0.0', join(root, program.slice(0, program.indexOf('/current/') + '/current'.length)));
  try {
    const { stderr } = await promisify(execFile)(ANALYZE!, ['verify', `--root=${root}`, unit]);
    return { code: 0, err: stderr, text };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: e.code ?? 1, err: e.stderr ?? String(err), text };
  }
}

describe('systemd units', () => {
  const fleet = new Fleet();
  afterAll(() => fleet.cleanup());

  it.skipIf(!ANALYZE)(`edgecore.service verifies clean, keeps workloads on stop (KillMode=process) and writes only its own dirs${SKIP}`, async () => {
    const { code, err, text } = await verify(fleet, 'edgecore.service', '/opt/edgefleet/current/bin/edgefleet-loader');
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(text).toMatch(/^KillMode=process$/m);
    expect(text).toMatch(/^Restart=always$/m);
    expect(text).toMatch(/^LimitNOFILE=\d+$/m);
    expect(text).toMatch(/^ProtectSystem=strict$/m);
    expect(text).toMatch(/^ReadWritePaths=\/opt\/edgefleet$/m);
    expect(text).toMatch(/^ExecStart=\/opt\/edgefleet\/current\/bin\/edgefleet-loader --config \/etc\/edgefleet\/edgecore.yaml$/m);
  });

  it.skipIf(!ANALYZE)(`cloudcore.service verifies clean and runs with no privilege${SKIP}`, async () => {
    const { code, err, text } = await verify(fleet, 'cloudcore.service', '/usr/bin/node');
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(text).toMatch(/^DynamicUser=yes$/m);
    expect(text).toMatch(/^NoNewPrivileges=yes$/m);
    expect(text).toMatch(/^CapabilityBoundingSet=$/m);
    expect(text).toMatch(/^ProtectSystem=strict$/m);
  });
});
