import { mapperDeviceList, type Device } from '../../../protocol/index.js';
import type { LocalRoute } from '../../local/statusServer.js';
import type { MapperAccess } from './mapperAccess.js';

export const MAPPER_DEVICES_PATH = '/mapper/v1/devices';

/**
 * `GET /mapper/v1/devices?protocol=` on the edge's local API: the devices a mapper of that
 * protocol serves, for the holder of that protocol's mapper password only. Answers nothing
 * (the server's 404) until the device broker is up and `access()` returns its credentials.
 */
export function mapperDevicesRoute(node: string, access: () => MapperAccess | undefined, devices: () => Device[]): LocalRoute {
  return (path, url, req) => {
    if (path !== MAPPER_DEVICES_PATH) return undefined;
    const mappers = access();
    if (!mappers) return undefined;
    const protocol = url.searchParams.get('protocol') ?? '';
    if (!mappers.authorized(protocol, req.headers.authorization)) {
      return { status: 401, body: { error: `mapper credential for protocol "${protocol}" missing or wrong (see <dataDir>/mappers/<protocol>.password)` } };
    }
    return { status: 200, body: mapperDeviceList(node, devices(), protocol) };
  };
}
