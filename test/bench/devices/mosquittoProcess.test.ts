import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { MOSQUITTO_BIN, startMosquitto, type MosquittoProcess } from './mosquittoProcess.js';

describe.skipIf(!existsSync(MOSQUITTO_BIN))('mosquitto reference broker', () => {
  let dir: string | undefined;
  let broker: MosquittoProcess | undefined;

  afterEach(async () => {
    await broker?.stop();
    broker = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('starts on 127.0.0.1, carries a QoS 1 message to a subscriber, and stops', async () => {
    dir = mkdtempSync(join(tmpdir(), 'bench-mosquitto-'));
    broker = await startMosquitto(dir);
    const url = `mqtt://127.0.0.1:${broker.port}`;
    const sub = await connectAsync(url, { clientId: 'sub', protocolVersion: 4, reconnectPeriod: 0 });
    const pub = await connectAsync(url, { clientId: 'bench-dev-0001', username: 'bench-dev-0001', password: 'x', protocolVersion: 4, reconnectPeriod: 0 });
    try {
      await sub.subscribeAsync('ef/devices/+/twin/reported', { qos: 1 });
      const got = new Promise<string>((resolve) => sub.once('message', (_t: string, payload: Buffer) => resolve(payload.toString())));
      await pub.publishAsync('ef/devices/bench-dev-0001/twin/reported', '{"properties":{"counter":1}}', { qos: 1 });
      expect(await got).toBe('{"properties":{"counter":1}}');
    } finally {
      await Promise.all([sub.endAsync(true), pub.endAsync(true)]);
    }
    const pid = broker.pid;
    await broker.stop();
    broker = undefined;
    expect(existsSync(`/proc/${pid}`)).toBe(false);
  });
});
