import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  DeviceCertificateListSchema, DeviceCertificateRequestSchema, DeviceCertificateResponseSchema, NameSchema, normalizeSerial, type Device,
} from '../../../protocol/index.js';
import { ApiError } from '../../http/apiError.js';
import { CertificateRequestError } from '../../pki/certificateAuthority.js';
import type { ServerTls } from '../../pki/serverTls.js';
import { readModifyWrite } from '../../store/readModifyWrite.js';
import { getOrNotFound, type ResourceRoutesOptions } from '../plumbing/routeContext.js';
import { NameParams, type ZodTypeProvider } from '../plumbing/zodSchemas.js';

/**
 * Device certificates: an X.509 identity for a device on its node's MQTT TLS listener, beside
 * (not instead of) its password. The key is made where the device lives (edgectl sends a CSR);
 * the cloud CA signs it for CN=<device>, O=edgefleet-device, and the serial goes on the device's
 * allow-list, which travels with the Device to its node. Removing a serial revokes it there.
 */
export interface DeviceCertificateRoutesOptions extends ResourceRoutesOptions {
  tls: ServerTls | undefined;
  deviceCertLifetimeSeconds: number;
}

const MAX_DEVICE_CERTIFICATES = 16;
const SerialParams = z.strictObject({ name: NameSchema, serial: z.string().regex(/^[0-9a-fA-F]{1,64}$/, 'must be a hexadecimal serial') });

export async function deviceCertificateRoutes(app: FastifyInstance, { store, tls, deviceCertLifetimeSeconds }: DeviceCertificateRoutesOptions): Promise<void> {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post('/devices/:name/certificate', {
    schema: { params: NameParams, body: DeviceCertificateRequestSchema, response: { '2xx': DeviceCertificateResponseSchema } },
  }, async (request, reply) => {
    const { name } = request.params;
    if (!tls) throw new ApiError(409, 'cloudcore serves plain HTTP (--insecure-plain-http): it has no CA to sign device certificates');
    await getOrNotFound(store, 'Device', name);
    let issued;
    try {
      issued = await tls.ca.signDevice(name, request.body.csr, request.body.lifetimeSeconds ?? deviceCertLifetimeSeconds);
    } catch (err) {
      if (err instanceof CertificateRequestError) throw new ApiError(400, err.message, 'csr', 'EF_BAD_CERTIFICATE_REQUEST');
      throw err;
    }
    const now = Date.now();
    await readModifyWrite(store, 'Device', name, (device): Device => {
      const alive = (device.spec.certificates ?? []).filter((c) => Date.parse(c.notAfter) > now);
      if (alive.length >= MAX_DEVICE_CERTIFICATES) {
        throw new ApiError(409, `device "${name}" already has ${MAX_DEVICE_CERTIFICATES} certificates: revoke one first`);
      }
      return { ...device, spec: { ...device.spec, certificates: [...alive, { serial: issued.serial, notAfter: issued.notAfter }] } };
    }, { absent: () => new ApiError(404, `device "${name}" not found`) });
    request.log.info({ device: name, serial: issued.serial, notAfter: issued.notAfter }, 'issued a device certificate');
    return reply.code(201).send({ device: name, certificate: issued.pem, caBundle: tls.bundlePem, serial: issued.serial, notAfter: issued.notAfter });
  });

  api.delete('/devices/:name/certificates/:serial', {
    schema: { params: SerialParams, response: { '2xx': DeviceCertificateListSchema } },
  }, async (request) => {
    const { name } = request.params;
    const serial = normalizeSerial(request.params.serial);
    const updated = await readModifyWrite(store, 'Device', name, (device): Device => {
      const certificates = device.spec.certificates ?? [];
      if (!certificates.some((c) => c.serial === serial)) throw new ApiError(404, `device "${name}" has no certificate ${serial}`);
      return { ...device, spec: { ...device.spec, certificates: certificates.filter((c) => c.serial !== serial) } };
    }, { absent: () => new ApiError(404, `device "${name}" not found`) });
    return { device: name, certificates: updated.spec.certificates ?? [] };
  });
}
