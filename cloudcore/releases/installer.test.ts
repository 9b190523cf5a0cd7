import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cloudUrlFromHost, INSTALLER_MARKS, loadInstallerTemplate, renderInstaller } from './installer.js';

const pem = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
const template = `A='${INSTALLER_MARKS.cloudUrl}'\nV='${INSTALLER_MARKS.version}'\nK='${INSTALLER_MARKS.releaseKey}'\n`;

describe('the installer cloudcore serves', () => {
  it('fills in the cloud URL, the version and the key, each inside its single quotes', () => {
    const out = renderInstaller(template, { cloudUrl: 'https://cloud.example:8443', version: '1.2.0', releaseKeyPem: pem });
    expect(out).toBe(`A='https://cloud.example:8443'\nV='1.2.0'\nK='${pem.trimEnd()}'\n`);
  });
  it('takes the cloud URL from a Host header only when it is a host name or address with a port', () => {
    expect(cloudUrlFromHost('https', 'cloud.example:8443')).toBe('https://cloud.example:8443');
    expect(cloudUrlFromHost('https', '10.0.0.5')).toBe('https://10.0.0.5');
    expect(cloudUrlFromHost('http', '[::1]:8080')).toBe('http://[::1]:8080');
    for (const bad of [undefined, '', "x';reboot;'", 'a b', 'host/path', 'h:p$(id)', '`id`', 'x:99999999']) {
      expect(() => cloudUrlFromHost('https', bad), String(bad)).toThrow(/Host header/);
    }
  });
  it('refuses values that could leave their quotes, and a template without each mark exactly once', () => {
    expect(() => renderInstaller(template, { cloudUrl: "https://x'", version: '1', releaseKeyPem: pem })).toThrow();
    expect(() => renderInstaller(template, { cloudUrl: 'https://x', version: "1';id;'", releaseKeyPem: pem })).toThrow();
    expect(() => renderInstaller(template, { cloudUrl: 'https://x', version: '1', releaseKeyPem: "-----BEGIN PUBLIC KEY-----\n'\n-----END PUBLIC KEY-----\n" })).toThrow();
    expect(() => renderInstaller(template + template, { cloudUrl: 'https://x', version: '1', releaseKeyPem: pem })).toThrow(/2 times/);
  });
  it('fills the shipped deploy/install.sh', () => {
    const out = renderInstaller(loadInstallerTemplate(), { cloudUrl: 'https://c:1', version: '9.9.9', releaseKeyPem: pem });
    expect(out).toContain("CLOUD_URL='https://c:1'");
    expect(out).not.toContain('@@EDGEFLEET_');
  });
});
