import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, MOSQUITTO_BIN } from '../../bench/devices/mosquittoProcess.js';

/**
 * Debian's mosquitto as an operator's broker for route tests: 127.0.0.1 on a free port, TLS with
 * a CA the test makes (openssl), a password file (mosquitto_passwd), no anonymous clients, and
 * persistence so a subscriber's session and what is queued for it survive a restart.
 */

export const operatorBrokerAvailable = existsSync(MOSQUITTO_BIN)
  && spawnSync('mosquitto_passwd', ['-h'], { encoding: 'utf8' }).error === undefined
  && spawnSync('openssl', ['version'], { encoding: 'utf8' }).status === 0;

export interface OperatorBroker {
  port: number;
  url: string;
  caFile: string;
  caPem: string;
  username: string;
  password: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  logTail(): string;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA and a server certificate for 127.0.0.1 (SAN IP), both P-256, in `dir`. */
export function makeServerTls(dir: string, name: string): { caFile: string; caPem: string; certFile: string; keyFile: string } {
  const caFile = join(dir, `${name}-ca.crt`);
  const caKey = join(dir, `${name}-ca.key`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caFile, '-days', '2', '-subj', `/CN=${name} test CA`]);
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n');
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', '/CN=127.0.0.1']);
  openssl(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-set_serial', '0x1001', '-days', '1', '-out', certFile, '-extfile', ext]);
  return { caFile, caPem: readFileSync(caFile, 'utf8'), certFile, keyFile };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => { socket.destroy(); resolve(false); });
  });
}

export async function makeOperatorBroker(dir: string, username = 'edge-route', password = 'route-secret'): Promise<OperatorBroker> {
  const tls = makeServerTls(dir, 'operator-broker');
  const passwordFile = join(dir, 'passwords');
  writeFileSync(passwordFile, '', { mode: 0o600 });
  execFileSync('mosquitto_passwd', ['-b', passwordFile, username, password], { stdio: ['ignore', 'ignore', 'pipe'] });
  const port = await freePort();
  const logPath = join(dir, 'mosquitto.log');
  const configPath = join(dir, 'mosquitto.conf');
  writeFileSync(configPath, [
    // Started as root, mosquitto would switch to its own user, who cannot read the test's private temp dir.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    `listener ${port} 127.0.0.1`,
    `cafile ${tls.caFile}`, `certfile ${tls.certFile}`, `keyfile ${tls.keyFile}`,
    'allow_anonymous false', `password_file ${passwordFile}`,
    'persistence true', `persistence_location ${dir}/`,
    'max_queued_messages 100000',
    `log_dest file ${logPath}`, 'log_type error', 'log_type warning', 'log_type notice', '',
  ].join('\n'));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const logTail = () => {
    try { return readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-20).join('\n'); } catch { return ''; }
  };
  const broker: OperatorBroker = {
    port, url: `mqtts://127.0.0.1:${port}`, caFile: tls.caFile, caPem: tls.caPem, username, password, logTail,
    async start() {
      const outFd = openSync(join(dir, 'mosquitto.out'), 'a');
      try {
        child = spawn(MOSQUITTO_BIN, ['-c', configPath], { stdio: ['ignore', outFd, outFd] });
      } finally {
        closeSync(outFd);
      }
      const running = child;
      exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
      running.once('error', () => {});
      const deadline = Date.now() + 10_000;
      while (!(await canConnect(port))) {
        if (running.exitCode !== null) throw new Error(`mosquitto exited (code ${running.exitCode}):\n${logTail()}`);
        if (Date.now() > deadline) throw new Error(`mosquitto not listening on ${port}:\n${logTail()}`);
        await sleep(50);
      }
    },
    async stop() {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      running.kill('SIGTERM');
      const timer = setTimeout(() => running.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  await broker.start();
  return broker;
}

/** mosquitto_sub / mosquitto_pub arguments to reach the broker over TLS with its password. */
export function operatorClientArgs(broker: OperatorBroker, clientId: string): string[] {
  return ['-h', '127.0.0.1', '-p', String(broker.port), '-V', 'mqttv311', '-i', clientId, '--cafile', broker.caFile, '-u', broker.username, '-P', broker.password];
}
