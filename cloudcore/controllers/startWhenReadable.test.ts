import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { UnavailableError } from '../store/store.js';
import { StartWhenReadable } from './startWhenReadable.js';

describe('StartWhenReadable', () => {
  it('retries a controller whose start found the store not answering (503), until it starts', async () => {
    let attempts = 0;
    let started = false;
    const controller = {
      async start() {
        attempts++;
        if (attempts < 3) throw new UnavailableError('etcd at http://127.0.0.1:1 did not answer within 5 s');
        started = true;
      },
      async stop() { started = false; },
    };
    const wrapped = new StartWhenReadable('test', controller, pino({ level: 'silent' }), 20);
    await wrapped.start();
    expect(started).toBe(false);
    await new Promise((r) => setTimeout(r, 200));
    expect(attempts).toBe(3);
    expect(started).toBe(true);
    await wrapped.stop();
    expect(started).toBe(false);
  });

  it('still fails at once on any other error', async () => {
    const controller = { async start() { throw new Error('bug'); }, async stop() {} };
    await expect(new StartWhenReadable('test', controller, pino({ level: 'silent' }), 20).start()).rejects.toThrow('bug');
  });
});
