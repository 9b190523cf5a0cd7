import { z } from 'zod';
import type { ModelProperty, PropertyValue } from '../../protocol/index.js';
import { rawToValue, valueToRaw } from '../sdk/index.js';

/**
 * Modbus device config and property visitors, and the pure translation between 16-bit
 * registers and twin values.
 */

const unitId = z.number().int().min(0).max(255).default(1);
const timeoutMs = z.number().int().min(50).max(60_000).default(2000);

export const ModbusTcpConfigSchema = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(502),
  unitId,
  timeoutMs,
});

export const ModbusRtuConfigSchema = z.object({
  serialPath: z.string().min(1),
  baudRate: z.number().int().positive().default(9600),
  dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
  stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
  parity: z.enum(['none', 'even', 'odd']).default('none'),
  unitId,
  timeoutMs,
});

export type ModbusConfig =
  | ({ transport: 'tcp' } & z.infer<typeof ModbusTcpConfigSchema>)
  | ({ transport: 'rtu' } & z.infer<typeof ModbusRtuConfigSchema>);

/** `serialPath` selects RTU over a serial line; otherwise Modbus TCP (`host`, `port`). */
export function parseModbusConfig(config: Record<string, unknown>): ModbusConfig {
  const rtu = 'serialPath' in config;
  const parsed = rtu ? ModbusRtuConfigSchema.safeParse(config) : ModbusTcpConfigSchema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`bad modbus ${rtu ? 'RTU' : 'TCP'} config at "${['config', ...issue.path].join('.')}": ${issue.message}`);
  }
  return rtu ? { transport: 'rtu', ...(parsed.data as z.infer<typeof ModbusRtuConfigSchema>) } : { transport: 'tcp', ...(parsed.data as z.infer<typeof ModbusTcpConfigSchema>) };
}

export const ModbusDataTypeSchema = z.enum(['int16', 'uint16', 'int32', 'uint32', 'float32']);
export type ModbusDataType = z.infer<typeof ModbusDataTypeSchema>;

export const ModbusVisitorSchema = z.object({
  register: z.enum(['holding', 'input', 'coil', 'discrete']),
  address: z.number().int().min(0).max(65535),
  /** Registers to read; defaults to what dataType needs. String/bytes properties must set it. */
  quantity: z.number().int().min(1).max(125).optional(),
  scale: z.number().refine((s) => s !== 0, 'must not be 0').default(1),
  offset: z.number().default(0),
  /** How the registers hold a number (default uint16). */
  dataType: ModbusDataTypeSchema.optional(),
  /** 32-bit values: which register holds the high word (devices differ). */
  wordOrder: z.enum(['high-first', 'low-first']).default('high-first'),
});
export type ModbusVisitor = z.infer<typeof ModbusVisitorSchema>;

export function parseModbusVisitor(visitor: Record<string, unknown>, property: string): ModbusVisitor {
  const parsed = ModbusVisitorSchema.safeParse(visitor);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`bad modbus visitor of "${property}" at "${['visitor', ...issue.path].join('.')}": ${issue.message}`);
  }
  return parsed.data;
}

export function registerCount(dataType: ModbusDataType): number {
  return dataType === 'int16' || dataType === 'uint16' ? 1 : 2;
}

/** How many registers (or coils) a property occupies, with a clear error for inconsistent visitors. */
export function quantityOf(visitor: ModbusVisitor, property: ModelProperty): number {
  if (visitor.register === 'coil' || visitor.register === 'discrete') return 1;
  if (property.type === 'string' || property.type === 'bytes') {
    if (visitor.quantity === undefined) throw new Error(`property "${property.name}" is ${property.type}: its visitor needs "quantity" (registers to read)`);
    return visitor.quantity;
  }
  const needed = registerCount(visitor.dataType ?? 'uint16');
  if (visitor.quantity !== undefined && visitor.quantity !== needed) {
    throw new Error(`property "${property.name}": dataType ${visitor.dataType ?? 'uint16'} takes ${needed} register(s), visitor says quantity ${visitor.quantity}`);
  }
  return needed;
}

function orderWords(words: readonly number[], order: ModbusVisitor['wordOrder']): number[] {
  return order === 'low-first' ? [...words].reverse() : [...words];
}

/** Registers (16-bit, as the bus gives them) → number. */
export function decodeNumber(words: readonly number[], dataType: ModbusDataType, wordOrder: ModbusVisitor['wordOrder'] = 'high-first'): number {
  const needed = registerCount(dataType);
  if (words.length < needed) throw new Error(`${dataType} needs ${needed} register(s), got ${words.length}`);
  const buf = Buffer.alloc(needed * 2);
  orderWords(words.slice(0, needed), wordOrder).forEach((w, i) => buf.writeUInt16BE(w & 0xffff, i * 2));
  switch (dataType) {
    case 'int16': return buf.readInt16BE(0);
    case 'uint16': return buf.readUInt16BE(0);
    case 'int32': return buf.readInt32BE(0);
    case 'uint32': return buf.readUInt32BE(0);
    case 'float32': return buf.readFloatBE(0);
  }
}

const RANGES: Record<Exclude<ModbusDataType, 'float32'>, [number, number]> = {
  int16: [-32768, 32767], uint16: [0, 65535], int32: [-2147483648, 2147483647], uint32: [0, 4294967295],
};

/** Number → registers; throws when it does not fit the data type. */
export function encodeNumber(raw: number, dataType: ModbusDataType, wordOrder: ModbusVisitor['wordOrder'] = 'high-first'): number[] {
  const buf = Buffer.alloc(registerCount(dataType) * 2);
  if (dataType === 'float32') {
    buf.writeFloatBE(raw, 0);
  } else {
    const [min, max] = RANGES[dataType];
    if (!Number.isInteger(raw) || raw < min || raw > max) throw new Error(`${raw} does not fit ${dataType} (${min}…${max})`);
    if (dataType === 'int16') buf.writeInt16BE(raw, 0);
    else if (dataType === 'uint16') buf.writeUInt16BE(raw, 0);
    else if (dataType === 'int32') buf.writeInt32BE(raw, 0);
    else buf.writeUInt32BE(raw, 0);
  }
  const words: number[] = [];
  for (let i = 0; i < buf.length; i += 2) words.push(buf.readUInt16BE(i));
  return orderWords(words, wordOrder);
}

function wordsToBytes(words: readonly number[]): Buffer {
  const buf = Buffer.alloc(words.length * 2);
  words.forEach((w, i) => buf.writeUInt16BE(w & 0xffff, i * 2));
  return buf;
}

function bytesToWords(bytes: Buffer, quantity: number): number[] {
  if (bytes.length > quantity * 2) throw new Error(`${bytes.length} bytes do not fit ${quantity} register(s)`);
  const buf = Buffer.alloc(quantity * 2);
  bytes.copy(buf);
  const words: number[] = [];
  for (let i = 0; i < buf.length; i += 2) words.push(buf.readUInt16BE(i));
  return words;
}

/** Registers → twin value of the property (scaled, typed). */
export function registersToValue(words: readonly number[], visitor: ModbusVisitor, property: ModelProperty): PropertyValue {
  if (property.type === 'string') return wordsToBytes(words).toString('latin1').replace(/[\0 ]+$/, '');
  if (property.type === 'bytes') return wordsToBytes(words).toString('base64');
  const raw = decodeNumber(words, visitor.dataType ?? 'uint16', visitor.wordOrder);
  if (property.type === 'boolean') return raw !== 0;
  return rawToValue(raw, visitor, property.type);
}

/** Twin value → registers to write (the inverse of registersToValue). */
export function valueToRegisters(value: PropertyValue, visitor: ModbusVisitor, property: ModelProperty): number[] {
  const quantity = quantityOf(visitor, property);
  if (property.type === 'string') return bytesToWords(Buffer.from(String(value), 'latin1'), quantity);
  if (property.type === 'bytes') return bytesToWords(Buffer.from(String(value), 'base64'), quantity);
  const dataType = visitor.dataType ?? 'uint16';
  if (typeof value === 'boolean') return encodeNumber(value ? 1 : 0, dataType, visitor.wordOrder);
  if (typeof value !== 'number') throw new Error(`property "${property.name}" needs a number to write a register`);
  return encodeNumber(valueToRaw(value, visitor, dataType !== 'float32'), dataType, visitor.wordOrder);
}

/** Coil/discrete bit → twin value: boolean properties get the bit, numeric ones 0/1. */
export function bitToValue(bit: boolean, property: ModelProperty): PropertyValue {
  return property.type === 'boolean' ? bit : bit ? 1 : 0;
}

export function valueToBit(value: PropertyValue, property: ModelProperty): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number' && (value === 0 || value === 1)) return value === 1;
  throw new Error(`property "${property.name}" maps to a coil: write true/false (or 0/1)`);
}
