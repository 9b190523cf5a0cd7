import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

/** Debian's mosquitto_pub / mosquitto_sub, run as real child processes against the hub. */

export const mosquittoClientsAvailable = ['mosquitto_pub', 'mosquitto_sub'].every((bin) => {
  const probe = spawnSync(bin, ['--help'], { encoding: 'utf8' });
  return probe.error === undefined && /mosquitto/.test(`${probe.stdout}${probe.stderr}`);
});

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

const running = new Set<ChildProcess>();

/** Runs a client to its end; a hard kill after `killAfterMs` guards against a hang. */
export function runClient(bin: 'mosquitto_pub' | 'mosquitto_sub', args: string[], killAfterMs = 30_000, lineBuffered = false): { done: Promise<Finished>; child: ChildProcess } {
  // A pipe makes stdio buffer whole blocks: a client that runs on is read line by line only through stdbuf.
  const child = lineBuffered ? spawn('stdbuf', ['-oL', bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  const done = new Promise<Finished>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
  return { done, child };
}

/** Connection arguments for the hub on 127.0.0.1:port, MQTT 3.1.1. */
export function connectArgs(port: number, clientId: string, username?: string, password?: string): string[] {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv311', '-i', clientId];
  if (username !== undefined) args.push('-u', username);
  if (password !== undefined) args.push('-P', password);
  return args;
}

/** Kills clients a failed test left running. */
export async function killClients(): Promise<void> {
  const left = [...running];
  for (const child of left) child.kill('SIGKILL');
  await Promise.all(left.map((child) => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('close', () => resolve());
  })));
}
