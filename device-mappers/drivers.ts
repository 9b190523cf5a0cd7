import type { ProtocolDriver } from './sdk/index.js';
import type { MapperSettings } from './settings.js';

/** Loads only the chosen protocol's driver: node-opcua alone takes seconds to import. */
export async function createDriver(settings: Pick<MapperSettings, 'protocol' | 'pkiDir'>): Promise<ProtocolDriver> {
  switch (settings.protocol) {
    case 'virtual': {
      const { VirtualDriver } = await import('./virtual/driver.js');
      return new VirtualDriver();
    }
    case 'modbus': {
      const { ModbusDriver } = await import('./modbus/driver.js');
      return new ModbusDriver();
    }
    case 'opcua': {
      const { OpcuaDriver } = await import('./opcua/driver.js');
      return new OpcuaDriver({ pkiRoot: settings.pkiDir });
    }
  }
}
