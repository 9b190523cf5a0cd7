import { describe, expect, it } from 'vitest';
import { actsFor, isStaleMapperPublish, mayPublish, mayReceive, maySubscribe, clientIdOwner, clientIdRefusal, principalLogFields, type Principal } from './deviceAcl.js';

const devices = new Map([['pump-1', 'virtual'], ['fan-1', 'virtual'], ['meter-1', 'modbus']]);
const pump: Principal = { kind: 'device', device: 'pump-1' };
const modbusMapper: Principal = { kind: 'mapper', username: 'mb', protocol: 'modbus' };
const anonymousFan: Principal = { kind: 'anonymous', clientId: 'fan-1' };

describe('deviceAcl', () => {
  it('a device acts only for itself; a mapper for its protocol; anonymous for its client id', () => {
    expect(actsFor(pump, 'pump-1', devices)).toBe(true);
    expect(actsFor(pump, 'fan-1', devices)).toBe(false);
    expect(actsFor(modbusMapper, 'meter-1', devices)).toBe(true);
    expect(actsFor(modbusMapper, 'pump-1', devices)).toBe(false);
    expect(actsFor(anonymousFan, 'fan-1', devices)).toBe(true);
    expect(actsFor({ kind: 'device', device: 'gone' }, 'gone', devices)).toBe(false);
  });

  it('publishing is limited to twin/reported, twin/get and telemetry', () => {
    for (const rest of ['twin/reported', 'twin/get', 'telemetry']) expect(mayPublish(pump, `ef/devices/pump-1/${rest}`, devices)).toBe(true);
    for (const rest of ['twin/desired', 'twin/delta', 'status', 'errors', 'twin/get/result', 'telemetry/x']) {
      expect(mayPublish(pump, `ef/devices/pump-1/${rest}`, devices), rest).toBe(false);
    }
    expect(mayPublish(pump, 'ef/devices/fan-1/twin/reported', devices)).toBe(false);
    expect(mayPublish(pump, '$SYS/broker/x', devices)).toBe(false);
    expect(mayPublish(modbusMapper, 'ef/devices/meter-1/telemetry', devices)).toBe(true);
  });

  it('a mapper publishing for a device no longer on the node is a race to ignore, not an intrusion', () => {
    for (const rest of ['twin/reported', 'telemetry', 'mapper/state']) expect(isStaleMapperPublish(modbusMapper, `ef/devices/gone-1/${rest}`, devices), rest).toBe(true);
    expect(isStaleMapperPublish(modbusMapper, 'ef/devices/gone-1/twin/desired', devices)).toBe(false);
    expect(isStaleMapperPublish(modbusMapper, 'ef/devices/pump-1/twin/reported', devices)).toBe(false); // there, but not its protocol
    expect(isStaleMapperPublish(pump, 'ef/devices/gone-1/twin/reported', devices)).toBe(false);
    expect(isStaleMapperPublish(modbusMapper, 'other/topic', devices)).toBe(false);
  });

  it('only a mapper says whether it reaches a device, and only for its own devices', () => {
    expect(mayPublish(modbusMapper, 'ef/devices/meter-1/mapper/state', devices)).toBe(true);
    expect(mayPublish(modbusMapper, 'ef/devices/pump-1/mapper/state', devices)).toBe(false);
    expect(mayPublish(pump, 'ef/devices/pump-1/mapper/state', devices)).toBe(false);
    expect(mayPublish(anonymousFan, 'ef/devices/fan-1/mapper/state', devices)).toBe(false);
    expect(mayPublish(modbusMapper, 'ef/devices/meter-1/mapper', devices)).toBe(false);
  });

  it('subscriptions stay below the devices the principal acts for', () => {
    expect(maySubscribe(pump, 'ef/devices/pump-1/#', devices)).toBe(true);
    expect(maySubscribe(pump, 'ef/devices/pump-1/twin/+', devices)).toBe(true);
    for (const filter of ['ef/devices/fan-1/#', 'ef/devices/+/twin/delta', 'ef/devices/#', 'ef/#', '#', '$SYS/#', 'ef/devices/pump-1', 'ef/devices/pump+/x']) {
      expect(maySubscribe(pump, filter, devices), filter).toBe(false);
    }
    expect(maySubscribe(modbusMapper, 'ef/devices/+/twin/delta', devices)).toBe(true);
    expect(maySubscribe(modbusMapper, 'ef/devices/meter-1/#', devices)).toBe(true);
    expect(maySubscribe(modbusMapper, 'ef/devices/pump-1/#', devices)).toBe(false);
    expect(maySubscribe(modbusMapper, 'ef/devices/#', devices)).toBe(false);
  });

  it('deliveries are filtered per device', () => {
    expect(mayReceive(modbusMapper, 'ef/devices/meter-1/twin/delta', devices)).toBe(true);
    expect(mayReceive(modbusMapper, 'ef/devices/pump-1/twin/delta', devices)).toBe(false);
    expect(mayReceive(pump, '$SYS/x/clients', devices)).toBe(false);
  });

  it('client ids are bound to principals: a device its name or <name>-<suffix>, mapper-… ids only mappers', () => {
    const mayUse = (p: Principal, id: string) => clientIdRefusal(p, id, devices) === null;
    expect(mayUse(pump, 'pump-1')).toBe(true);
    expect(mayUse(pump, 'pump-1-tool')).toBe(true);
    expect(mayUse(pump, 'fan-1')).toBe(false);
    expect(mayUse(pump, 'pump-10')).toBe(false);
    expect(mayUse(pump, 'anything')).toBe(false);
    expect(clientIdRefusal(pump, 'mapper-virtual-edge-1', devices)).toBe('client id "mapper-virtual-edge-1" is reserved for mappers');
    expect(mayUse(modbusMapper, 'mapper-modbus-edge-1')).toBe(true);
    expect(mayUse(modbusMapper, 'meter-1')).toBe(false);
    expect(mayUse(anonymousFan, 'fan-1')).toBe(true);
    expect(mayUse({ kind: 'anonymous', clientId: 'mapper-x' }, 'mapper-x')).toBe(false);
    // A device whose name is a prefix of another's cannot take the other's id.
    const nested = new Map([...devices, ['pump-1-b', 'virtual']]);
    expect(clientIdRefusal(pump, 'pump-1-b', nested)).toBe('client id "pump-1-b" is reserved for device "pump-1-b"');
  });

  it('names a client in log lines by its device, or by its mapper login and protocol', () => {
    expect(principalLogFields(pump)).toEqual({ device: 'pump-1' });
    expect(principalLogFields(anonymousFan)).toEqual({ device: 'fan-1' });
    expect(principalLogFields(modbusMapper)).toEqual({ mapper: 'mb', protocol: 'modbus' });
    expect(principalLogFields(undefined)).toEqual({});
  });

  it('a client id belongs to the longest device name it is or starts with (followed by "-")', () => {
    const nested = new Map([...devices, ['pump-1-b', 'virtual']]);
    expect(clientIdOwner('pump-1', nested)).toBe('pump-1');
    expect(clientIdOwner('pump-1-x', nested)).toBe('pump-1');
    expect(clientIdOwner('pump-1-b-x', nested)).toBe('pump-1-b');
    expect(clientIdOwner('pump-10', nested)).toBeNull();
    expect(clientIdOwner('-pump-1', nested)).toBeNull();
    expect(clientIdOwner('mapper-virtual-edge-1', nested)).toBeNull();
  });
});
