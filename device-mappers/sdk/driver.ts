import type { ModelProperty, PropertyValue } from '../../protocol/index.js';
import type { MapperDevice } from './deviceList.js';

/**
 * What a protocol plugs into the shared loop. The loop owns timing, retries, back-off, MQTT
 * and the twin; a driver only opens a connection to one device and reads/writes one property.
 * The loop never runs two operations of one connection at the same time, so drivers for
 * half-duplex buses (Modbus RTU) need no locking of their own.
 */
export interface ProtocolDriver {
  /** Opens a connection; rejects with a message that says what is wrong (bad config, refused, timeout). */
  connect(device: MapperDevice): Promise<DeviceConnection>;
}

export interface DeviceConnection {
  /** Reads one property; `visitor` is the property's protocol-specific address (not yet validated). */
  read(visitor: Record<string, unknown>, property: ModelProperty): Promise<PropertyValue>;
  /** Writes a value that already passed the model's checks. */
  write(visitor: Record<string, unknown>, property: ModelProperty, value: PropertyValue): Promise<void>;
  close(): Promise<void>;
}
