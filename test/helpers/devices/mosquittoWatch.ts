import { runClient, type Finished } from './mosquittoClients.js';
import { waitFor } from '../wait.js';

/**
 * A long-running mosquitto_sub whose output is parsed as it comes: `-d` tells when the SUBACK
 * is in (and what it granted), `-F '%r %t %p'` gives each message with its retain flag.
 */
export interface Watch {
  /** Messages so far: retain flag, topic, payload. */
  messages(): { retain: boolean; topic: string; payload: string }[];
  /** The granted QoS of each filter, once the SUBACK is in (128: refused). */
  subscribed(): Promise<number[]>;
  /** Resolves when the client exits. */
  done: Promise<Finished>;
  output(): string;
  /** SIGTERM: mosquitto_sub disconnects cleanly; SIGKILL: its socket just closes (a will is published). */
  stop(signal?: NodeJS.Signals): Promise<Finished>;
}

export function watch(connect: string[], filters: string[], extra: string[] = []): Watch {
  const args = [...connect, '-d', '-F', '%r %t %p', ...filters.flatMap((f) => ['-t', f]), ...extra];
  const { done, child } = runClient('mosquitto_sub', args, 120_000, true);
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
  let exited = false;
  void done.then(() => { exited = true; });
  const lines = () => out.split('\n');
  return {
    messages: () => lines().filter((l) => /^[01] /.test(l)).map((l) => {
      const [flag, topic, ...payload] = l.split(' ');
      return { retain: flag === '1', topic: topic!, payload: payload.join(' ') };
    }),
    subscribed: async () => {
      const line = await waitFor('SUBACK', () => lines().find((l) => l.startsWith('Subscribed (mid:')) ?? (exited ? 'exited' : undefined))
        .catch((err: Error) => { throw new Error(`${err.message}; mosquitto_sub said: ${out}`); });
      if (line === 'exited') throw new Error(`mosquitto_sub ended before its SUBACK: ${out}`);
      return line.slice(line.indexOf('):') + 2).split(',').map((s) => Number(s.trim()));
    },
    done,
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (!exited) child.kill(signal);
      return done;
    },
  };
}
