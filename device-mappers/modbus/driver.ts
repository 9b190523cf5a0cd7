import ModbusSerial from 'modbus-serial';
import type { ModelProperty, PropertyValue } from '../../protocol/index.js';
import { errorMessage, type DeviceConnection, type MapperDevice, type ProtocolDriver } from '../sdk/index.js';
import {
  bitToValue, parseModbusConfig, parseModbusVisitor, quantityOf, registersToValue, valueToBit, valueToRegisters,
  type ModbusConfig, type ModbusVisitor,
} from './registers.js';

// modbus-serial is CommonJS whose typings declare an ES default export; under NodeNext the
// class is the `default` member (at run time `module.exports.default` is the class itself).
const ModbusRTU = ModbusSerial.default;
type ModbusClient = InstanceType<typeof ModbusRTU>;

/**
 * Modbus TCP (`config: {host, port, unitId}`) and Modbus RTU over a serial line
 * (`config: {serialPath, baudRate, unitId}`), through modbus-serial. RTU uses the library's
 * buffered RTU port (its recommended serial transport); it needs the optional `serialport`
 * package at run time.
 */
export class ModbusDriver implements ProtocolDriver {
  async connect(device: MapperDevice): Promise<DeviceConnection> {
    const config = parseModbusConfig(device.protocol.config);
    const client = new ModbusRTU();
    // Without a listener an 'error' event would end the whole mapper; the failed request rejects anyway.
    client.on('error', () => undefined);
    const where = config.transport === 'tcp' ? `${config.host}:${config.port}` : config.serialPath;
    try {
      if (config.transport === 'tcp') {
        await client.connectTCP(config.host, { port: config.port, timeout: config.timeoutMs });
      } else {
        await client.connectRTUBuffered(config.serialPath, {
          baudRate: config.baudRate, dataBits: config.dataBits, stopBits: config.stopBits, parity: config.parity,
        });
      }
    } catch (err) {
      closeClient(client, config);
      throw new Error(`cannot open modbus ${config.transport.toUpperCase()} ${where}: ${errorMessage(err)}`);
    }
    client.setID(config.unitId);
    client.setTimeout(config.timeoutMs);
    return new ModbusConnection(client, config);
  }
}

function closeClient(client: ModbusClient, config: ModbusConfig): Promise<void> {
  return new Promise((resolve) => {
    // TCP: destroy also fails the requests still waiting for an answer. RTU: close the serial port.
    const fallback = setTimeout(resolve, 2000);
    const done = () => { clearTimeout(fallback); resolve(); };
    try {
      if (config.transport === 'tcp') client.destroy(done);
      else client.close(done);
    } catch {
      done();
    }
  });
}

class ModbusConnection implements DeviceConnection {
  private readonly visitors = new Map<string, ModbusVisitor>();

  constructor(private readonly client: ModbusClient, private readonly config: ModbusConfig) {}

  private visitorOf(visitor: Record<string, unknown>, property: ModelProperty): ModbusVisitor {
    let parsed = this.visitors.get(property.name);
    if (!parsed) {
      parsed = parseModbusVisitor(visitor, property.name);
      this.visitors.set(property.name, parsed);
    }
    return parsed;
  }

  private ensureOpen(): void {
    if (!this.client.isOpen) throw new Error('the modbus connection is closed');
  }

  async read(visitor: Record<string, unknown>, property: ModelProperty): Promise<PropertyValue> {
    const v = this.visitorOf(visitor, property);
    const quantity = quantityOf(v, property);
    this.ensureOpen();
    switch (v.register) {
      case 'coil':
        return bitToValue((await this.client.readCoils(v.address, 1)).data[0] === true, property);
      case 'discrete':
        return bitToValue((await this.client.readDiscreteInputs(v.address, 1)).data[0] === true, property);
      case 'holding':
        return registersToValue((await this.client.readHoldingRegisters(v.address, quantity)).data, v, property);
      case 'input':
        return registersToValue((await this.client.readInputRegisters(v.address, quantity)).data, v, property);
    }
  }

  async write(visitor: Record<string, unknown>, property: ModelProperty, value: PropertyValue): Promise<void> {
    const v = this.visitorOf(visitor, property);
    if (v.register === 'input' || v.register === 'discrete') {
      throw new Error(`property "${property.name}" maps to ${v.register === 'input' ? 'an input register' : 'a discrete input'}, which Modbus cannot write`);
    }
    if (v.register === 'coil') {
      const bit = valueToBit(value, property);
      this.ensureOpen();
      await this.client.writeCoil(v.address, bit);
      return;
    }
    const words = valueToRegisters(value, v, property);
    this.ensureOpen();
    // FC6 for one register (the function every device has), FC16 for several.
    if (words.length === 1) await this.client.writeRegister(v.address, words[0]!);
    else await this.client.writeRegisters(v.address, words);
  }

  close(): Promise<void> {
    return closeClient(this.client, this.config);
  }
}
