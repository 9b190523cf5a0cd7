import { describe, expect, it } from 'vitest';
import { NodePublishRequestSchema, RouteInputSchema } from './index.js';

const route = (spec: unknown) => ({ metadata: { name: 'alerts' }, spec });

function firstIssue(input: unknown): string {
  const parsed = RouteInputSchema.safeParse(input);
  if (parsed.success) return 'ok';
  const issue = parsed.error.issues[0]!;
  return `${issue.path.join('.')}: ${issue.message}`;
}

describe('Route input', () => {
  const cloud = { source: { topics: ['apps/alerts/#'] }, destination: { type: 'cloud' } };
  it('accepts a cloud route and fills the limits', () => {
    const parsed = RouteInputSchema.parse(route(cloud));
    expect(parsed.spec.limits).toEqual({ maxMessagesPerSecond: 100, maxMessageBytes: 65536, maxQueuedMessages: 10000, maxQueuedBytes: 67108864 });
  });
  it('names a bad filter by its field', () => {
    expect(firstIssue(route({ ...cloud, source: { topics: ['apps/#/x'] } }))).toMatch(/^spec\.source\.topics\.0: "apps\/#\/x" is not a valid MQTT topic filter/);
  });
  it('refuses plain mqtt:// without allowPlaintext, naming the url', () => {
    expect(firstIssue(route({ ...cloud, destination: { type: 'mqtt', url: 'mqtt://broker:1883' } }))).toMatch(/^spec\.destination\.url: mqtt:\/\/ sends data and password in clear/);
    expect(firstIssue(route({ ...cloud, destination: { type: 'mqtt', url: 'mqtt://broker:1883', allowPlaintext: true } }))).toBe('ok');
    expect(firstIssue(route({ ...cloud, destination: { type: 'mqtt', url: 'https://x' } }))).toMatch(/^spec\.destination\.url: scheme "https:"/);
    expect(firstIssue(route({ ...cloud, destination: { type: 'mqtt', url: 'mqtts://u:p@x' } }))).toMatch(/^spec\.destination\.url: must not carry credentials/);
  });
  it('names a bad limit and a dotted name', () => {
    expect(firstIssue(route({ ...cloud, limits: { maxQueuedMessages: 0 } }))).toMatch(/^spec\.limits\.maxQueuedMessages:/);
    expect(firstIssue({ metadata: { name: 'a.b' }, spec: cloud })).toMatch(/^metadata\.name: a route name cannot contain "\."/);
  });
});

describe('operator publish', () => {
  it('reaches only the application namespace', () => {
    expect(NodePublishRequestSchema.safeParse({ topic: 'apps/setpoints/room-1', payload: '21' }).success).toBe(true);
    const refused = NodePublishRequestSchema.safeParse({ topic: 'ef/devices/t1/twin/desired', payload: '{}' });
    expect(refused.success).toBe(false);
    expect(refused.error!.issues[0]!.message).toMatch(/must be under "apps\/"/);
  });
});
