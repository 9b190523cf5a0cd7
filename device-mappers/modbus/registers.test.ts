import { describe, expect, it } from 'vitest';
import type { ModelProperty } from '../../protocol/index.js';
import { decodeNumber, encodeNumber, parseModbusConfig, parseModbusVisitor, quantityOf, registersToValue, valueToRegisters } from './registers.js';

const prop = (name: string, type: ModelProperty['type']): ModelProperty => ({ name, type, accessMode: 'ReadWrite' });

describe('modbus registers', () => {
  it('decodes and encodes every data type, both word orders', () => {
    expect(decodeNumber([0xffff], 'int16')).toBe(-1);
    expect(decodeNumber([0xffff], 'uint16')).toBe(65535);
    expect(decodeNumber([0x0001, 0x0000], 'int32')).toBe(65536);
    expect(decodeNumber([0x0000, 0x0001], 'int32', 'low-first')).toBe(65536);
    expect(decodeNumber([0xffff, 0xfffe], 'int32')).toBe(-2);
    expect(decodeNumber([0x3fc0, 0x0000], 'float32')).toBe(1.5);
    for (const [value, type] of [[-2, 'int32'], [4000000000, 'uint32'], [-1.5, 'float32'], [-300, 'int16'], [60000, 'uint16']] as const) {
      expect(decodeNumber(encodeNumber(value, type), type)).toBe(value);
      expect(decodeNumber(encodeNumber(value, type, 'low-first'), type, 'low-first')).toBe(value);
    }
    expect(() => encodeNumber(70000, 'uint16')).toThrow(/does not fit uint16/);
    expect(() => encodeNumber(1.5, 'int16')).toThrow(/does not fit/);
    expect(() => decodeNumber([1], 'float32')).toThrow(/needs 2/);
  });

  it('maps registers to typed, scaled twin values and back', () => {
    const temp = parseModbusVisitor({ register: 'input', address: 0, scale: 0.1, dataType: 'int16' }, 't');
    expect(registersToValue([0xff9c], temp, prop('t', 'float'))).toBe(-10);
    expect(valueToRegisters(-10, temp, prop('t', 'float'))).toEqual([0xff9c]);
    const label = parseModbusVisitor({ register: 'holding', address: 0, quantity: 3 }, 'label');
    expect(valueToRegisters('AB', label, prop('label', 'string'))).toEqual([0x4142, 0, 0]);
    expect(registersToValue([0x4142, 0x4300, 0], label, prop('label', 'string'))).toBe('ABC');
    expect(() => valueToRegisters('ABCDEFG', label, prop('label', 'string'))).toThrow(/do not fit 3/);
    expect(registersToValue([2], parseModbusVisitor({ register: 'holding', address: 1 }, 'b'), prop('b', 'boolean'))).toBe(true);
    expect(() => quantityOf(parseModbusVisitor({ register: 'holding', address: 1 }, 's'), prop('s', 'string'))).toThrow(/needs "quantity"/);
  });

  it('tells TCP from RTU configs and fills defaults', () => {
    expect(parseModbusConfig({ host: '10.0.0.5' })).toEqual({ transport: 'tcp', host: '10.0.0.5', port: 502, unitId: 1, timeoutMs: 2000 });
    expect(parseModbusConfig({ serialPath: '/dev/ttyUSB0', unitId: 3 })).toMatchObject({ transport: 'rtu', baudRate: 9600, parity: 'none', unitId: 3 });
    expect(() => parseModbusConfig({})).toThrow(/config.host/);
    expect(() => parseModbusVisitor({ register: 'holding', address: 1, scale: 0 }, 'p')).toThrow(/visitor.scale.*must not be 0/);
  });
});
