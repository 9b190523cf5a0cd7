import { describe, expect, it } from 'vitest';
import type { MapperDevice } from '../sdk/index.js';
import { VirtualDriver } from './driver.js';
import { counterValue, nextTemperature, VirtualConfigSchema } from './simulation.js';

describe('virtual devices', () => {
  it('temperature drifts within ±drift and the model bounds', () => {
    expect(nextTemperature(20, 0.5, () => 1)).toBe(20.5);
    expect(nextTemperature(20, 0.5, () => 0)).toBe(19.5);
    expect(nextTemperature(84.9, 0.5, () => 1, -40, 85)).toBe(85);
    expect(nextTemperature(20, 0.5, () => 0.5)).toBe(20);
  });

  it('the counter counts steps per period since its base', () => {
    expect(counterValue(10, 1, 1000, 0, 2500)).toBe(12);
    expect(counterValue(0, 5, 100, 1000, 900)).toBe(0);
  });

  it('configs are checked, and each kind serves its one property', async () => {
    expect(VirtualConfigSchema.safeParse({ kind: 'toaster' }).error?.issues[0]?.message).toContain('thermometer');
    const driver = new VirtualDriver(() => 1);
    const device = (config: Record<string, unknown>): MapperDevice => ({
      name: 'v', protocol: { name: 'virtual', config }, properties: [], desired: {},
      model: { protocol: 'virtual', properties: [{ name: 'x', type: 'int', accessMode: 'ReadOnly' }] },
    });
    await expect(driver.connect(device({ kind: 'switch', initial: 'yes' }))).rejects.toThrow(/config.initial/);
    await expect(driver.connect(device({ kind: 'switch', unreachable: true }))).rejects.toThrow(/unreachable/);
    const sw = await driver.connect(device({ kind: 'switch' }));
    const on = { name: 'on', type: 'boolean', accessMode: 'ReadWrite' } as const;
    expect(await sw.read({}, on)).toBe(false);
    await sw.write({}, on, true);
    expect(await sw.read({}, on)).toBe(true);
    await expect(sw.read({}, { ...on, name: 'power' })).rejects.toThrow(/has only "on"/);
    expect(await sw.read({ field: 'on' }, { ...on, name: 'power' })).toBe(true);
    const th = await driver.connect(device({ kind: 'thermometer', start: 10, drift: 1 }));
    const temperature = { name: 'temperature', type: 'float', accessMode: 'ReadOnly' } as const;
    expect(await th.read({}, temperature)).toBe(11);
    await expect(th.write({}, temperature, 3)).rejects.toThrow(/read-only/);
  });
});
