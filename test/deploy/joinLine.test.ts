import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TokenResponseSchema } from '../../protocol/index.js';
import { Fleet, runToEnd } from '../helpers/fleet.js';
import { cloudCaBundle, httpsCall, tlsApi } from '../helpers/tlsClient.js';

/** The URL in the join line: cloudcore's advertise address (what nodes dial) before the one edgectl used. */
describe('edgectl token create --print-join-command', () => {
  const fleet = new Fleet();
  afterAll(() => fleet.cleanup());

  it('puts the cloud\'s first advertise address and its port in the line, and the token\'s pin in the CA check; a cloud with no release serves no installer', async () => {
    const cloud = await fleet.startCloud({ tls: true, extra: ['--advertise-address', 'localhost,127.0.0.1'] });
    const answer = TokenResponseSchema.parse((await tlsApi(cloud).call('POST', '/tokens', { node: 'edge-a' })).body);
    expect(answer.cloudUrl).toBe(`https://localhost:${cloud.port}`);
    const ca = join(fleet.root, 'ca.pem');
    writeFileSync(ca, cloudCaBundle(cloud));
    const printed = await runToEnd('edgectl', ['--server', cloud.url, '--token', cloud.token, '--certificate-authority', ca, 'token', 'create', 'edge-b', '--print-join-command']);
    expect(printed.code, printed.err).toBe(0);
    expect(printed.out).toContain(`curl -fsSk https://localhost:${cloud.port}/hub/v1/ca`);
    expect(printed.out).toContain(`echo "${cloud.caPin}  $d/ca.pem" | sha256sum -c`);
    expect(printed.out).toMatch(/\| sh -s -- --token EF1-[0-9a-f]{64}-[0-9a-f]+\.[0-9a-f]+ --node edge-b --ca-file "\$d\/ca.pem"\)$/);
    const overridden = await runToEnd('edgectl', ['--server', cloud.url, '--token', cloud.token, '--certificate-authority', ca, 'token', 'create', 'edge-c', '--print-join-command', '--cloud-url', 'https://10.1.2.3:8443']);
    expect(overridden.out).toContain('https://10.1.2.3:8443/install.sh');
    // This cloud has no dist dir: nothing listed, and no installer that could only fail on the node.
    expect((await httpsCall(`${cloud.url}/dist/index.json`, { ca: cloudCaBundle(cloud) })).body).toEqual({ versions: [] });
    const installer = await httpsCall<{ error: string }>(`${cloud.url}/install.sh`, { ca: cloudCaBundle(cloud) });
    expect(installer.status).toBe(503);
    expect(installer.body.error).toContain('no release public key');
  });
});
