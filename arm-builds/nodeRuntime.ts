import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileDigest, log, run } from './exec.js';
import type { NodeRuntimePin } from './targets.js';

export interface NodeRuntime {
  pin: NodeRuntimePin;
  /** Extracted package: bin/node, include/node (headers, common.gypi, config.gypi). */
  dir: string;
  /** NODE_MODULE_VERSION of that runtime (the ABI a native addon is built for). */
  moduleVersion: number;
}

/**
 * The pinned Node.js runtime package, fetched once with `npm pack` (the registry is the only
 * source these machines reach) into `<cache>/npm/`, its sha512 checked against the pin, and
 * extracted into `<cache>/node/<pkg>-<version>/`. An extraction is complete only once its stamp
 * file is written, so an interrupted build never leaves a half runtime that looks cached.
 */
export async function nodeRuntime(cache: string, pin: NodeRuntimePin): Promise<NodeRuntime> {
  const dir = join(cache, 'node', `${pin.pkg}-${pin.version}`);
  const stamp = join(dir, '.edgefleet-extracted');
  if (!existsSync(stamp) || readFileSync(stamp, 'utf8').trim() !== pin.integrity) {
    const tgz = await packedRuntime(cache, pin);
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    await run('tar', ['-xzf', tgz, '-C', tmp, '--strip-components=1', '--no-same-owner']);
    writeFileSync(join(tmp, '.edgefleet-extracted'), `${pin.integrity}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    log(`${pin.pkg}@${pin.version}: extracted into ${dir}`);
  }
  return { pin, dir, moduleVersion: readModuleVersion(dir) };
}

async function packedRuntime(cache: string, pin: NodeRuntimePin): Promise<string> {
  const npmDir = join(cache, 'npm');
  mkdirSync(npmDir, { recursive: true });
  const tgz = join(npmDir, `${pin.pkg}-${pin.version}.tgz`);
  if (existsSync(tgz) && await integrityOf(tgz) === pin.integrity) return tgz;
  log(`${pin.pkg}@${pin.version}: npm pack (about 40 MB)`);
  await run('npm', ['pack', `${pin.pkg}@${pin.version}`, '--pack-destination', npmDir, '--silent']);
  const got = existsSync(tgz) ? await integrityOf(tgz) : 'missing';
  if (got !== pin.integrity) {
    rmSync(tgz, { force: true });
    throw new Error(`${pin.pkg}@${pin.version}: integrity ${got} is not the pinned ${pin.integrity}; refusing it`);
  }
  return tgz;
}

async function integrityOf(path: string): Promise<string> {
  return `sha512-${await fileDigest(path, 'sha512', 'base64')}`;
}

function readModuleVersion(dir: string): number {
  const header = readFileSync(join(dir, 'include', 'node', 'node_version.h'), 'utf8');
  const m = /#define NODE_MODULE_VERSION (\d+)/.exec(header);
  if (m === null) throw new Error(`no NODE_MODULE_VERSION in ${dir}/include/node/node_version.h`);
  return Number(m[1]);
}
