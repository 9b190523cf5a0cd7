import { describe, expect, it } from 'vitest';
import { DeviceInputSchema } from './devices.js';
import { DeviceMqttGrantSchema, WorkloadMqttGrantSchema, filterCovers, grantFilterProblem, topicFilterProblem, topicMatches } from './mqttFilters.js';
import { WorkloadTemplateSchema } from './templates.js';

const issues = (schema: typeof WorkloadTemplateSchema | typeof WorkloadMqttGrantSchema, input: unknown) => {
  const r = schema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('MQTT topic filters', () => {
  it('checks filter syntax', () => {
    for (const ok of ['a', 'a/b', '+', '#', 'a/+/c', 'a/#', '/a', 'a//b', '+/+']) expect(topicFilterProblem(ok), ok).toBeNull();
    expect(topicFilterProblem('')).toBe('must not be empty');
    expect(topicFilterProblem('a/#/b')).toMatch(/"#" must be a whole level and the last one/);
    expect(topicFilterProblem('a#')).toMatch(/"#"/);
    expect(topicFilterProblem('a/b+')).toMatch(/"\+" must be a whole level/);
    expect(topicFilterProblem('a\u0000b')).toMatch(/NUL/);
  });

  it('matches topics as MQTT 3.1.1 does, `$` topics only by a literal first level', () => {
    expect(topicMatches('a/+/c', 'a/b/c')).toBe(true);
    expect(topicMatches('a/+/c', 'a/b/c/d')).toBe(false);
    expect(topicMatches('a/#', 'a')).toBe(true);
    expect(topicMatches('a/#', 'a/b/c')).toBe(true);
    expect(topicMatches('+/+', '/a')).toBe(true);
    expect(topicMatches('#', '$SYS/x')).toBe(false);
    expect(topicMatches('+/x', '$a/x')).toBe(false);
    expect(topicMatches('$a/x', '$a/x')).toBe(true);
    expect(topicMatches('a/b', 'a/b/c')).toBe(false);
  });

  it('decides whether a granted filter covers a subscription', () => {
    expect(filterCovers('apps/#', 'apps/x/+/y')).toBe(true);
    expect(filterCovers('apps/#', 'apps')).toBe(true);
    expect(filterCovers('apps/#', '#')).toBe(false);
    expect(filterCovers('apps/+/out', 'apps/a/out')).toBe(true);
    expect(filterCovers('apps/+/out', 'apps/+/out')).toBe(true);
    expect(filterCovers('apps/+/out', 'apps/#')).toBe(false);
    expect(filterCovers('apps/a/out', 'apps/+/out')).toBe(false);
    expect(filterCovers('apps/a', 'apps/a/b')).toBe(false);
    expect(filterCovers('ef/devices/+/telemetry', 'ef/devices/t1/telemetry')).toBe(true);
    expect(filterCovers('ef/devices/+/telemetry', 'ef/devices/+/+')).toBe(false);
    expect(filterCovers('#', '$SYS/#')).toBe(false);
    expect(filterCovers('+/#', '$x/a')).toBe(false);
  });
});

describe('grants', () => {
  it('takes app topics both ways and reading telemetry, reported twins and status', () => {
    expect(issues(WorkloadMqttGrantSchema, {
      publish: ['apps/alerts/#', 'apps/thermo/out'],
      subscribe: ['apps/+/in', 'ef/devices/+/telemetry', 'ef/devices/thermo-1/twin/reported', 'ef/devices/+/status'],
    })).toEqual([]);
    expect(WorkloadMqttGrantSchema.parse({ publish: ['apps/a'] })).toEqual({ publish: ['apps/a'], subscribe: [] });
  });

  it('refuses writing the twin contract, reading desired or delta, `$`, other roots, bad syntax, and too many', () => {
    expect(grantFilterProblem('ef/devices/+/twin/desired', 'subscribe', 'workload')).toMatch(/never desired or delta/);
    expect(grantFilterProblem('ef/devices/+/twin/delta', 'subscribe', 'workload')).toMatch(/never desired or delta/);
    expect(grantFilterProblem('ef/devices/+/#', 'subscribe', 'workload')).toMatch(/never desired or delta/);
    expect(grantFilterProblem('ef/devices/#', 'subscribe', 'workload')).toMatch(/never desired or delta/);
    expect(grantFilterProblem('ef/devices/+/telemetry', 'publish', 'workload')).toMatch(/only through its twin/);
    expect(grantFilterProblem('ef/devices/+/twin/desired', 'publish', 'workload')).toMatch(/only through its twin/);
    expect(grantFilterProblem('$SYS/#', 'subscribe', 'workload')).toMatch(/"\$" topics/);
    expect(grantFilterProblem('#', 'subscribe', 'workload')).toMatch(/below "apps\/"/);
    expect(grantFilterProblem('other/x', 'publish', 'workload')).toMatch(/below "apps\/"/);
    expect(grantFilterProblem('apps', 'publish', 'workload')).toMatch(/below "apps\/"/);
    expect(grantFilterProblem('apps/a/#/b', 'publish', 'workload')).toMatch(/"#" must be/);
    expect(grantFilterProblem(`apps/${'x'.repeat(300)}`, 'publish', 'workload')).toMatch(/at most 256/);
    expect(issues(WorkloadMqttGrantSchema, { publish: Array.from({ length: 33 }, (_, i) => `apps/${i}`) })).toHaveLength(1);
  });

  it('names the field in a template: mqtt.subscribe[1]', () => {
    expect(issues(WorkloadTemplateSchema, { runtime: 'process', command: 'x', mqtt: { publish: ['apps/a'], subscribe: ['apps/b', 'ef/devices/+/twin/desired'] } }))
      .toEqual(['mqtt.subscribe.1: "ef/devices/+/twin/desired" must be one of "ef/devices/+/telemetry", "ef/devices/+/twin/reported", "ef/devices/+/status" (a device name or "+" in place of "+"): apps read telemetry, reported twins and status, never desired or delta']);
    expect(issues(WorkloadTemplateSchema, { runtime: 'process', command: 'x', mqtt: { publish: [], subscribe: [], extra: [] } })).toHaveLength(1);
    // Optional, not defaulted: templates stored before the field parse to what they were.
    expect('mqtt' in WorkloadTemplateSchema.parse({ runtime: 'process', command: 'x' })).toBe(false);
  });

  it('gives a device app topics only', () => {
    expect(DeviceMqttGrantSchema.safeParse({ publish: ['apps/plc/out'], subscribe: ['apps/plc/in'] }).success).toBe(true);
    expect(grantFilterProblem('ef/devices/+/telemetry', 'subscribe', 'device')).toMatch(/own twin topics without a grant/);
    const device = DeviceInputSchema.safeParse({ metadata: { name: 'plc' }, spec: { model: 'm', nodeName: 'n', protocol: { name: 'mqtt' }, mqtt: { subscribe: ['ef/devices/+/telemetry'] } } });
    expect(device.success ? [] : device.error.issues.map((i) => i.path.join('.'))).toEqual(['spec.mqtt.subscribe.0']);
  });
});
