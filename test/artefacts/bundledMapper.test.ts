import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DataType, MessageSecurityMode, OPCUACertificateManager, OPCUAServer, SecurityPolicy, Variant } from 'node-opcua';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Fleet, Proc, ROOT, type Cloud, type Edge } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The artefact's bundled mapper with node-opcua inside it: node-opcua's packages look for files
 * beside their own code at load and on first connect (package roots, certificate folders), which
 * a bundle moves. The x64 artefact's bin/mapper reads a variable of a real OPCUAServer and the
 * value reaches the cloud twin through a real edgecore. x64 only: the emulated runs
 * (verify.test.ts) cover the ARM runtimes with the virtual protocol; this covers the bundle.
 */

const run = promisify(execFile);
const VERSION = '9.9.8-mapper';
const OUT = join(ROOT, 'dist-artefacts', 'test-mapper');
const reason = process.platform !== 'linux' || process.arch !== 'x64' ? `the x64 artefact runs on linux/x64 only (this is ${process.platform}/${process.arch})` : null;

describe.skipIf(reason !== null)(`bundled OPC UA mapper${reason !== null ? ` — SKIPPED: ${reason}` : ''}`, () => {
  const fleet = new Fleet();
  let server: OPCUAServer;
  let endpoint: string;
  let cloud: Cloud;
  let edge: Edge;
  let home: string;
  let mapper: Proc | undefined;

  beforeAll(async () => {
    await run(process.execPath, [join(ROOT, 'dist', 'arm-builds', 'build.js'), '--version', VERSION, '--arch', 'x64', '--out', OUT],
      { cwd: ROOT, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, EDGEFLEET_SIGNING_KEY_FILE: '' } });
    const dir = fleet.tempDir('ef-bundled-mapper-');
    await run('tar', ['-xzf', join(OUT, `edgefleet-edge-${VERSION}-linux-x64.tar.gz`), '-C', dir]);
    home = join(dir, `edgefleet-edge-${VERSION}-linux-x64`);

    server = new OPCUAServer({
      port: 0, hostname: '127.0.0.1',
      serverCertificateManager: new OPCUACertificateManager({ rootFolder: join(dir, 'server-pki'), automaticallyAcceptUnknownCertificate: true }),
      userCertificateManager: new OPCUACertificateManager({ rootFolder: join(dir, 'user-pki'), automaticallyAcceptUnknownCertificate: true }),
      securityModes: [MessageSecurityMode.None], securityPolicies: [SecurityPolicy.None], allowAnonymous: true,
    });
    await server.initialize();
    const addressSpace = server.engine.addressSpace!;
    const ns = addressSpace.getOwnNamespace();
    const boiler = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: 'Boiler' });
    ns.addVariable({
      componentOf: boiler, nodeId: 's=Temperature', browseName: 'Temperature', dataType: 'Float', minimumSamplingInterval: 100,
      value: { get: () => new Variant({ dataType: DataType.Float, value: 18.25 }) },
    });
    await server.start();
    endpoint = `opc.tcp://127.0.0.1:${server.endpoints[0]!.port}`;

    cloud = await fleet.startCloud();
    edge = await fleet.startEdge({ node: 'ua-1', cloudUrl: cloud.url, joinToken: await api(cloud).token('ua-1') });
    expect((await api(cloud).call('POST', '/devicemodels', { metadata: { name: 'boiler' }, spec: { protocol: 'opcua', properties: [
      { name: 'temperature', type: 'float', accessMode: 'ReadOnly' },
    ] } })).status).toBe(201);
    expect((await api(cloud).call('POST', '/devices', { metadata: { name: 'boiler-1' }, spec: {
      model: 'boiler', nodeName: 'ua-1', protocol: { name: 'opcua', config: { endpoint, timeoutMs: 5000 } },
      properties: [{ name: 'temperature', visitor: { nodeId: 'ns=1;s=Temperature' }, collectCycleMs: 500, reportCycleMs: 500 }],
    } })).status).toBe(201);
    await waitFor('device on the edge', async () => JSON.stringify(await fleet.edgeStatus(edge)).includes('"boiler-1"'));
  }, 900_000);

  afterAll(async () => {
    await mapper?.stop();
    await server?.shutdown(0);
    await fleet.cleanup();
  }, 60_000);

  it('bin/mapper opcua of the x64 artefact reads the variable into the cloud twin', async () => {
    const ready = edge.proc.lines.find((l) => l.msg === 'edgecore ready')!;
    mapper = new Proc(spawn(join(home, 'bin', 'mapper'), ['opcua', '--node', 'ua-1', '--edge-url', edge.statusUrl, '--mqtt', String(ready.mqttUrl),
      '--credential-file', join(edge.dataDir, 'mappers', 'opcua.password'), '--pki-dir', join(fleet.root, 'client-pki'), '--refresh-seconds', '1'],
    { stdio: ['ignore', 'pipe', 'pipe'] }));
    const twin = await waitFor('reported temperature in the cloud twin', async () => {
      if (mapper!.exitCode !== undefined) throw new Error(`mapper exited (${mapper!.exitCode}): ${mapper!.stderr.slice(-5).join('\n')}`);
      const t = (await api(cloud).call<{ reported: Record<string, unknown> }>('GET', '/devices/boiler-1/twin')).body;
      return t.reported.temperature === 18.25 ? t : undefined;
    }, 90_000);
    expect(twin.reported.temperature).toBe(18.25);
    expect(mapper.lines.some((l) => l.msg === 'device connected')).toBe(true);
  }, 120_000);
});
