import { describe, expect, it } from 'vitest';
import type { MqttGrant } from '../../../protocol/index.js';
import { appClientIdOwner, mayPublishBeyondContract, mayReceiveBeyondContract, maySubscribeBeyondContract, sessionOwner, topicSpace } from './appAcl.js';
import { clientIdRefusal, mayPublish, maySubscribe, type Principal } from './deviceAcl.js';

const grant: MqttGrant = { publish: ['apps/alerts/+'], subscribe: ['ef/devices/+/telemetry', 'apps/cmd/#'] };
const app: Principal = { kind: 'app', username: 'app-alerter', workload: 'alerter', grant };
const general: Principal = { kind: 'general', clientId: 'paho' };
const plc: Principal = { kind: 'device', device: 'plc-1' };
const pump: Principal = { kind: 'device', device: 'pump-1' };
const devices = new Map([['pump-1', 'virtual'], ['plc-1', 'mqtt']]);
const ctx = { deviceGrant: (name: string) => (name === 'plc-1' ? { publish: ['apps/plc/out'], subscribe: ['apps/plc/in/#'] } : undefined) };

describe('appAcl', () => {
  it('splits topics into the contract, app topics and the general space', () => {
    expect(topicSpace('ef/devices/x/telemetry')).toBe('contract');
    expect(topicSpace('ef')).toBe('contract');
    expect(topicSpace('apps/x')).toBe('apps');
    expect(topicSpace('TopicA/B')).toBe('general');
    expect(topicSpace('$SYS/x')).toBe('general');
    expect(topicSpace('#')).toBe('general');
  });

  it('an app publishes and subscribes inside its grant only, and never writes the contract', () => {
    expect(mayPublishBeyondContract(app, 'apps/alerts/hot', ctx)).toBe(true);
    expect(mayPublishBeyondContract(app, 'apps/alerts/hot/x', ctx)).toBe(false);
    expect(mayPublishBeyondContract(app, 'apps/cmd/x', ctx)).toBe(false);
    expect(mayPublishBeyondContract(app, 'TopicA', ctx)).toBe(false);
    expect(mayPublish(app, 'ef/devices/pump-1/telemetry', devices)).toBe(false);
    expect(maySubscribeBeyondContract(app, 'ef/devices/pump-1/telemetry', ctx)).toBe(true);
    expect(maySubscribeBeyondContract(app, 'ef/devices/+/+', ctx)).toBe(false);
    expect(maySubscribeBeyondContract(app, 'apps/cmd/+/x', ctx)).toBe(true);
    expect(maySubscribeBeyondContract(app, '#', ctx)).toBe(false);
    expect(maySubscribe(app, 'ef/devices/+/telemetry', devices)).toBe(false); // the contract's own rule: mappers only
    expect(mayReceiveBeyondContract(app, 'ef/devices/pump-1/telemetry', ctx)).toBe(true);
    expect(mayReceiveBeyondContract(app, 'ef/devices/pump-1/twin/desired', ctx)).toBe(false);
    expect(mayReceiveBeyondContract(app, 'apps/other', ctx)).toBe(false);
  });

  it('a device uses app topics only through its own grant', () => {
    expect(mayPublishBeyondContract(plc, 'apps/plc/out', ctx)).toBe(true);
    expect(maySubscribeBeyondContract(plc, 'apps/plc/in/#', ctx)).toBe(true);
    expect(mayReceiveBeyondContract(plc, 'apps/plc/in/a', ctx)).toBe(true);
    expect(mayPublishBeyondContract(pump, 'apps/plc/out', ctx)).toBe(false);
    expect(maySubscribeBeyondContract(pump, 'apps/#', ctx)).toBe(false);
    expect(mayReceiveBeyondContract(pump, 'apps/plc/in/a', ctx)).toBe(false);
  });

  it('a general-purpose client has the general space: never ef/ or apps/, never publishing as $SYS', () => {
    expect(mayPublishBeyondContract(general, 'TopicA/B', ctx)).toBe(true);
    expect(mayPublishBeyondContract(general, '$TopicA/B', ctx)).toBe(true);
    expect(mayPublishBeyondContract(general, '$SYS/broker/x', ctx)).toBe(false);
    expect(mayPublishBeyondContract(general, 'apps/alerts/x', ctx)).toBe(false);
    expect(mayPublish(general, 'ef/devices/pump-1/telemetry', devices)).toBe(false);
    expect(maySubscribeBeyondContract(general, '#', ctx)).toBe(true);
    expect(maySubscribeBeyondContract(general, 'apps/#', ctx)).toBe(false);
    expect(maySubscribeBeyondContract(general, 'ef/#', ctx)).toBe(false);
    // `#` is allowed, but delivers only the general space.
    expect(mayReceiveBeyondContract(general, 'ef/devices/pump-1/telemetry', ctx)).toBe(false);
    expect(mayReceiveBeyondContract(general, 'apps/alerts/x', ctx)).toBe(false);
    expect(mayReceiveBeyondContract(general, 'TopicA', ctx)).toBe(true);
  });

  it('binds client ids: an app to its username, a general client to ids no device, mapper or app owns', () => {
    expect(clientIdRefusal(app, 'app-alerter', devices)).toBeNull();
    expect(clientIdRefusal(app, 'app-alerter-2', devices)).toBeNull();
    expect(clientIdRefusal(app, 'app-other', devices)).toMatch(/may use client id "app-alerter"/);
    expect(clientIdRefusal(app, 'pump-1', devices)).toMatch(/reserved for device/);
    expect(clientIdRefusal(general, 'paho', devices)).toBeNull();
    expect(clientIdRefusal(general, 'pump-1', devices)).toMatch(/reserved for device/);
    expect(clientIdRefusal(general, 'pump-1-x', devices)).toMatch(/reserved for device/);
    expect(clientIdRefusal(general, 'app-alerter', devices)).toMatch(/reserved for mappers and apps/);
    expect(clientIdRefusal({ kind: 'mapper', username: 'mapper-virtual', protocol: 'virtual' }, 'app-alerter', devices)).toMatch(/reserved for app/);
  });

  it('counts an app\'s persistent sessions against its identity, as a device\'s against the device', () => {
    expect(sessionOwner(app)).toBe('app-alerter');
    expect(sessionOwner(pump)).toBe('pump-1');
    expect(sessionOwner(general)).toBeNull();
    expect(sessionOwner({ kind: 'mapper', username: 'mapper-virtual', protocol: 'virtual' })).toBeNull();
    expect(appClientIdOwner('app-alerter-2', 'app-alerter')).toBe('app-alerter');
    expect(appClientIdOwner('app-alerter2', 'app-alerter')).toBeNull();
  });
});
