import type { ModelProperty, PropertyValue } from '../../protocol/index.js';
import type { DeviceConnection, MapperDevice, ProtocolDriver } from '../sdk/index.js';
import { counterValue, nextTemperature, SIMULATED_FIELD, VirtualConfigSchema, VirtualVisitorSchema, type VirtualConfig } from './simulation.js';

/** Devices that live in the mapper's memory: each connect starts a fresh simulation. */
export class VirtualDriver implements ProtocolDriver {
  constructor(private readonly random: () => number = Math.random) {}

  async connect(device: MapperDevice): Promise<DeviceConnection> {
    const parsed = VirtualConfigSchema.safeParse(device.protocol.config);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Error(`bad virtual device config at "${['config', ...issue.path].join('.')}": ${issue.message}`);
    }
    if (parsed.data.unreachable) throw new Error('virtual device is configured unreachable');
    return new VirtualConnection(parsed.data, this.random);
  }
}

class VirtualConnection implements DeviceConnection {
  private temperature: number;
  private on: boolean;
  private counterBase: number;
  private counterSince = Date.now();

  constructor(private readonly config: VirtualConfig, private readonly random: () => number) {
    this.temperature = config.kind === 'thermometer' ? config.start : 0;
    this.on = config.kind === 'switch' ? config.initial : false;
    this.counterBase = config.kind === 'counter' ? config.start : 0;
  }

  private field(visitor: Record<string, unknown>, property: ModelProperty): void {
    const parsed = VirtualVisitorSchema.safeParse(visitor);
    const field = (parsed.success ? parsed.data.field : undefined) ?? property.name;
    const simulated = SIMULATED_FIELD[this.config.kind];
    if (field !== simulated) throw new Error(`a virtual ${this.config.kind} has only "${simulated}", not "${field}" (set visitor.field to map it)`);
  }

  async read(visitor: Record<string, unknown>, property: ModelProperty): Promise<PropertyValue> {
    this.field(visitor, property);
    switch (this.config.kind) {
      case 'thermometer':
        this.temperature = nextTemperature(this.temperature, this.config.drift, this.random, property.minimum, property.maximum);
        return this.temperature;
      case 'switch':
        return this.on;
      case 'counter':
        return counterValue(this.counterBase, this.config.step, this.config.periodMs, this.counterSince, Date.now());
    }
  }

  async write(visitor: Record<string, unknown>, property: ModelProperty, value: PropertyValue): Promise<void> {
    this.field(visitor, property);
    switch (this.config.kind) {
      case 'thermometer':
        throw new Error('a virtual thermometer is read-only');
      case 'switch':
        if (typeof value !== 'boolean') throw new Error('a virtual switch takes true or false');
        this.on = value;
        return;
      case 'counter':
        if (typeof value !== 'number' || !Number.isInteger(value)) throw new Error('a virtual counter takes an integer');
        this.counterBase = value;
        this.counterSince = Date.now();
        return;
    }
  }

  async close(): Promise<void> {}
}
