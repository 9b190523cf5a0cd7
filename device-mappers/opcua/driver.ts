import {
  AttributeIds, DataType, MessageSecurityMode, OPCUACertificateManager, OPCUAClient, SecurityPolicy, Variant,
  resolveNodeId, type ClientSession,
} from 'node-opcua';
import { z } from 'zod';
import type { ModelProperty, PropertyValue } from '../../protocol/index.js';
import { errorMessage, type DeviceConnection, type MapperDevice, type ProtocolDriver } from '../sdk/index.js';
import { propertyValueToVariantValue, variantToPropertyValue } from './convert.js';

export const OpcuaConfigSchema = z.object({
  endpoint: z.string().regex(/^opc\.tcp:\/\/[^/\s]+/, 'must be an opc.tcp:// endpoint URL, e.g. opc.tcp://10.0.0.5:4840'),
  timeoutMs: z.number().int().min(100).max(120_000).default(5000),
});

export const OpcuaVisitorSchema = z.object({
  /** e.g. `ns=1;s=Setpoint` or `i=2258`. */
  nodeId: z.string().min(1),
});

export interface OpcuaDriverOptions {
  /**
   * Folder for the client's PKI (its own certificate, trusted/rejected server certificates).
   * node-opcua creates a self-signed certificate there on first use, even with security None.
   * Default: node-opcua's per-user folder.
   */
  pkiRoot?: string;
}

function parseOrThrow<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new Error(`bad ${what} at "${issue.path.join('.')}": ${issue.message}`);
}

/** OPC UA through node-opcua's client, security mode None, anonymous. */
export class OpcuaDriver implements ProtocolDriver {
  private readonly certificateManager?: OPCUACertificateManager;

  constructor(options: OpcuaDriverOptions = {}) {
    if (options.pkiRoot) {
      this.certificateManager = new OPCUACertificateManager({ rootFolder: options.pkiRoot, automaticallyAcceptUnknownCertificate: true });
    }
  }

  async connect(device: MapperDevice): Promise<DeviceConnection> {
    const config = parseOrThrow(OpcuaConfigSchema, device.protocol.config, 'opcua config (config.…)');
    const client = OPCUAClient.create({
      applicationName: 'EdgeFleet mapper',
      endpointMustExist: false,
      securityMode: MessageSecurityMode.None,
      securityPolicy: SecurityPolicy.None,
      // The mapper loop owns retries and back-off; the client gives up at once and says why.
      connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 500 },
      transportTimeout: config.timeoutMs,
      requestedSessionTimeout: 60_000,
      keepSessionAlive: true,
      ...(this.certificateManager ? { clientCertificateManager: this.certificateManager } : {}),
    });
    let session: ClientSession | undefined;
    try {
      await client.connect(config.endpoint);
      session = await client.createSession();
    } catch (err) {
      await client.disconnect().catch(() => undefined);
      throw new Error(`cannot open OPC UA session at ${config.endpoint}: ${errorMessage(err)}`);
    }
    return new OpcuaConnection(client, session);
  }
}

class OpcuaConnection implements DeviceConnection {
  /** Each variable's own DataType, learnt on the first read: writes must use exactly that type. */
  private readonly dataTypes = new Map<string, DataType>();
  private lost = false;

  constructor(private readonly client: OPCUAClient, private readonly session: ClientSession) {
    client.on('connection_lost', () => { this.lost = true; });
    client.on('close', () => { this.lost = true; });
  }

  private nodeIdOf(visitor: Record<string, unknown>, property: ModelProperty): string {
    const { nodeId } = parseOrThrow(OpcuaVisitorSchema, visitor, `opcua visitor of "${property.name}" (visitor.…)`);
    try {
      resolveNodeId(nodeId);
    } catch (err) {
      throw new Error(`bad nodeId "${nodeId}" for "${property.name}": ${errorMessage(err)}`);
    }
    return nodeId;
  }

  private ensureOpen(): void {
    if (this.lost) throw new Error('the OPC UA connection was lost');
  }

  private async readVariant(nodeId: string): Promise<{ value: unknown; dataType: DataType }> {
    this.ensureOpen();
    const dataValue = await this.session.read({ nodeId, attributeId: AttributeIds.Value });
    if (dataValue.statusCode.isNotGood()) throw new Error(`reading ${nodeId}: ${dataValue.statusCode.name}`);
    const dataType = dataValue.value.dataType;
    this.dataTypes.set(nodeId, dataType);
    return { value: dataValue.value.value as unknown, dataType };
  }

  async read(visitor: Record<string, unknown>, property: ModelProperty): Promise<PropertyValue> {
    const nodeId = this.nodeIdOf(visitor, property);
    const { value, dataType } = await this.readVariant(nodeId);
    return variantToPropertyValue(value, dataType, property);
  }

  async write(visitor: Record<string, unknown>, property: ModelProperty, value: PropertyValue): Promise<void> {
    const nodeId = this.nodeIdOf(visitor, property);
    const dataType = this.dataTypes.get(nodeId) ?? (await this.readVariant(nodeId)).dataType;
    const variant = new Variant({ dataType, value: propertyValueToVariantValue(value, dataType, property.name) });
    this.ensureOpen();
    const status = await this.session.write({ nodeId, attributeId: AttributeIds.Value, value: { value: variant } });
    if (status.isNotGood()) throw new Error(`writing ${nodeId}: ${status.name}`);
  }

  async close(): Promise<void> {
    await this.session.close().catch(() => undefined);
    await this.client.disconnect().catch(() => undefined);
  }
}
