import { DataType } from 'node-opcua';
import type { ModelProperty, PropertyValue } from '../../protocol/index.js';

/**
 * Pure translation between OPC UA variant values and twin values. The OPC UA variable keeps
 * its own DataType; the twin property keeps its model type; both directions convert between
 * the two and refuse what has no faithful meaning (arrays, structures).
 */

const INTEGER_TYPES = new Set<DataType>([DataType.SByte, DataType.Byte, DataType.Int16, DataType.UInt16, DataType.Int32, DataType.UInt32, DataType.Int64, DataType.UInt64]);
const NUMBER_TYPES = new Set<DataType>([...INTEGER_TYPES, DataType.Float, DataType.Double]);

/** node-opcua carries 64-bit integers as [high, low] 32-bit halves. */
function int64ToNumber(halves: readonly number[], signed: boolean): number {
  const [high = 0, low = 0] = halves;
  const signedHigh = signed && high >= 0x80000000 ? high - 0x100000000 : high;
  return signedHigh * 0x100000000 + low;
}

function numberToInt64(n: number): [number, number] {
  const high = Math.floor(n / 0x100000000);
  const low = n - high * 0x100000000;
  return [high < 0 ? high + 0x100000000 : high, low];
}

function asNumber(value: unknown, dataType: DataType): number | null {
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (Array.isArray(value) && (dataType === DataType.Int64 || dataType === DataType.UInt64)) {
    return int64ToNumber(value.map(Number), dataType === DataType.Int64);
  }
  return null;
}

function asText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'object' && value !== null && 'text' in value && typeof value.text === 'string') return value.text; // LocalizedText
  if (typeof value === 'object' && value !== null && 'toString' in value && typeof value.toString === 'function' && !Buffer.isBuffer(value)) {
    const text = String(value);
    if (text !== '[object Object]') return text; // NodeId, QualifiedName, Guid
  }
  return null;
}

/** A variable's value → the property's twin value; throws with the reason when it cannot. */
export function variantToPropertyValue(value: unknown, dataType: DataType, property: ModelProperty): PropertyValue {
  if (value === null || value === undefined) throw new Error(`"${property.name}": the OPC UA variable holds no value`);
  if (ArrayBuffer.isView(value) && !Buffer.isBuffer(value)) throw new Error(`"${property.name}": OPC UA arrays are not supported`);
  if (Array.isArray(value) && !(dataType === DataType.Int64 || dataType === DataType.UInt64)) throw new Error(`"${property.name}": OPC UA arrays are not supported`);
  switch (property.type) {
    case 'int': case 'float': case 'double': {
      const n = asNumber(value, dataType);
      if (n === null) throw new Error(`"${property.name}" is ${property.type} but the OPC UA variable is ${DataType[dataType]}`);
      return property.type === 'int' ? Math.round(n) : n;
    }
    case 'boolean': {
      if (typeof value === 'boolean') return value;
      const n = asNumber(value, dataType);
      if (n === null) throw new Error(`"${property.name}" is boolean but the OPC UA variable is ${DataType[dataType]}`);
      return n !== 0;
    }
    case 'bytes':
      if (Buffer.isBuffer(value)) return value.toString('base64');
      throw new Error(`"${property.name}" is bytes but the OPC UA variable is ${DataType[dataType]}`);
    case 'string': {
      const text = asText(value);
      if (text === null) throw new Error(`"${property.name}" is string but the OPC UA variable is ${DataType[dataType]}`);
      return text;
    }
  }
}

/** A twin value → the value to put in a Variant of the variable's own DataType. */
export function propertyValueToVariantValue(value: PropertyValue, dataType: DataType, propertyName: string): unknown {
  if (dataType === DataType.Boolean) {
    if (typeof value === 'boolean') return value;
    if (typeof value === 'number') return value !== 0;
  } else if (NUMBER_TYPES.has(dataType)) {
    const n = typeof value === 'boolean' ? (value ? 1 : 0) : typeof value === 'number' ? value : Number.NaN;
    if (Number.isFinite(n)) {
      if (!INTEGER_TYPES.has(dataType)) return n;
      if (Number.isInteger(n)) return dataType === DataType.Int64 || dataType === DataType.UInt64 ? numberToInt64(n) : n;
      throw new Error(`"${propertyName}": the OPC UA variable is ${DataType[dataType]}, ${n} is not an integer`);
    }
  } else if (dataType === DataType.String) {
    return String(value);
  } else if (dataType === DataType.LocalizedText) {
    return { text: String(value) };
  } else if (dataType === DataType.ByteString && typeof value === 'string') {
    return Buffer.from(value, 'base64');
  } else if (dataType === DataType.DateTime && typeof value === 'string' && !Number.isNaN(Date.parse(value))) {
    return new Date(value);
  }
  throw new Error(`"${propertyName}": cannot write ${JSON.stringify(value)} to an OPC UA variable of type ${DataType[dataType]}`);
}
