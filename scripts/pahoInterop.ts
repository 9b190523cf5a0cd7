import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import { DeviceHub } from '../edgecore/devices/deviceHub.js';

/**
 * Runs the Eclipse Paho MQTT 3.1.1 interoperability suite (paho.mqtt.testing,
 * interoperability/client_test.py, Python 3) against edgecore's device broker in general-purpose
 * mode, plain aedes and Debian's mosquitto, all on loopback, and prints each one's score
 * (docs/mqtt.md, "General-purpose mode"). Not part of the test suite: the Paho suite is not on a
 * fresh machine, and our own tests cover the same behaviours with mosquitto_pub/sub.
 *
 *   node dist/scripts/pahoInterop.js <paho.mqtt.testing checkout, its interoperability dir, or a bare git dir of it> [edge|aedes|mosquitto ...]
 */

interface Broker { port: number; stop(): Promise<void> }
type BrokerName = 'edge' | 'aedes' | 'mosquitto';

const SUITE_TIMEOUT_MS = 600_000;
/**
 * client_test.py reads its options with getopt and then calls unittest.main(), which parses
 * the same argv again and refuses them; and its `-h` is taken for `--help` (`o in ("--help")`
 * tests a substring). So it is run with `--hostname=`/`--port=`, unittest given no arguments.
 */
const SUITE_RUNNER = [
  'import sys, runpy, unittest',
  'real = unittest.main',
  'unittest.main = lambda *a, **k: real(*a, argv=[sys.argv[0]], **k)',
  "runpy.run_path('client_test.py', run_name='__main__')",
].join('\n');

async function main(): Promise<void> {
  const [source, ...names] = process.argv.slice(2);
  if (source === undefined) {
    console.error('usage: pahoInterop.js <paho.mqtt.testing path> [edge|aedes|mosquitto ...]');
    process.exit(2);
  }
  const chosen = (names.length > 0 ? names : ['edge', 'aedes', 'mosquitto']) as BrokerName[];
  const work = mkdtempSync(join(tmpdir(), 'paho-interop-'));
  try {
    const suite = await suiteDir(source, work);
    const results: { broker: BrokerName; passed: number; ran: number; failed: string[] }[] = [];
    for (const name of chosen) {
      const broker = await start(name, work);
      try {
        results.push({ broker: name, ...await runSuite(suite, broker.port) });
      } finally {
        await broker.stop();
      }
    }
    for (const r of results) console.log(`${r.broker.padEnd(10)} ${r.passed}/${r.ran}${r.failed.length > 0 ? `  failed: ${r.failed.join(', ')}` : ''}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The directory holding client_test.py; a bare git dir is exported into `work` first (read-only use of it). */
async function suiteDir(source: string, work: string): Promise<string> {
  for (const dir of [source, join(source, 'interoperability')]) if (existsSync(join(dir, 'client_test.py'))) return dir;
  if (!existsSync(join(source, 'HEAD'))) throw new Error(`${source}: no client_test.py there or in interoperability/, and not a git dir`);
  const archive = spawn('git', ['--git-dir', source, 'archive', 'HEAD', 'interoperability'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const untar = spawn('tar', ['-x', '-C', work], { stdio: ['pipe', 'inherit', 'inherit'] });
  archive.stdout.pipe(untar.stdin);
  await Promise.all([exited(archive), exited(untar)]);
  return join(work, 'interoperability');
}

function exited(child: ReturnType<typeof spawn>): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${child.spawnfile} exited with ${code}`))));
  });
}

async function start(name: BrokerName, work: string): Promise<Broker> {
  if (name === 'edge') {
    const hub = new DeviceHub({ db: join(work, 'edge.sqlite'), host: '127.0.0.1', port: 0, allowAnonymous: false, generalPurpose: true, upstream: () => {} });
    const { port } = await hub.start();
    hub.setDevices([]);
    return { port, stop: () => hub.close() };
  }
  if (name === 'aedes') {
    const broker = await Aedes.createBroker();
    const server = createServer((socket) => broker.handle(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      port: (server.address() as AddressInfo).port,
      stop: async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await new Promise<void>((resolve) => broker.close(() => resolve()));
      },
    };
  }
  const port = await freePort();
  const config = join(work, 'mosquitto.conf');
  writeFileSync(config, `listener ${port} 127.0.0.1\nallow_anonymous true\n`);
  const child = spawn('/usr/sbin/mosquitto', ['-c', config], { stdio: 'ignore' });
  await waitForPort(port);
  return { port, stop: async () => { child.kill('SIGTERM'); await new Promise((resolve) => child.once('close', resolve)); } };
}

/** Runs client_test.py; its unittest summary gives the score. */
async function runSuite(dir: string, port: number): Promise<{ passed: number; ran: number; failed: string[] }> {
  const child = spawn('python3', ['-c', SUITE_RUNNER, `--hostname=127.0.0.1`, `--port=${port}`], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), SUITE_TIMEOUT_MS);
  await new Promise((resolve) => child.once('close', resolve));
  clearTimeout(timer);
  const ran = Number(/Ran (\d+) tests?/.exec(out)?.[1] ?? 0);
  if (ran === 0 || process.env.PAHO_VERBOSE === '1') console.error(out);
  const failures = Number(/failures=(\d+)/.exec(out)?.[1] ?? 0);
  const errors = Number(/errors=(\d+)/.exec(out)?.[1] ?? 0);
  const failed = [...out.matchAll(/^(?:FAIL|ERROR): (\w+)/gm)].map((m) => m[1]!);
  return { passed: ran - failures - errors, ran, failed };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`mosquitto did not listen on ${port}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
