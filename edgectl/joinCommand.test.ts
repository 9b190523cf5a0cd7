import { describe, expect, it } from 'vitest';
import { joinCommand } from './joinCommand.js';

const pin = 'ab'.repeat(32);
const token = `EF1-${pin}-0a1b.c2d3`;

describe('the join command edgectl prints', () => {
  it('checks the CA bundle against the token\'s pin before it trusts it for the installer', () => {
    expect(joinCommand('https://cloud.example:8443/', 'edge-1', token)).toBe(
      `(d=$(mktemp -d) && trap 'rm -rf "$d"' EXIT && curl -fsSk https://cloud.example:8443/hub/v1/ca -o "$d/ca.pem" && echo "${pin}  $d/ca.pem" | sha256sum -c && `
      + `curl -fsSL --cacert "$d/ca.pem" https://cloud.example:8443/install.sh | sh -s -- --token ${token} --node edge-1 --ca-file "$d/ca.pem")`);
  });
  it('is the bare curl | sh over plain HTTP or with a token that pins nothing', () => {
    expect(joinCommand('http://10.0.0.1:8080', 'edge-1', '0a1b.c2d3')).toBe('curl -fsSL http://10.0.0.1:8080/install.sh | sh -s -- --token 0a1b.c2d3 --node edge-1');
    expect(joinCommand('https://[fd00::1]:8443', 'edge-1', '0a1b.c2d3')).toBe('curl -fsSL https://[fd00::1]:8443/install.sh | sh -s -- --token 0a1b.c2d3 --node edge-1');
  });
  it('refuses anything a shell would read as more than a word', () => {
    expect(() => joinCommand('https://x;reboot', 'edge-1', token)).toThrow(/cloud URL/);
    expect(() => joinCommand('https://x/path', 'edge-1', token)).toThrow(/cloud URL/);
    expect(() => joinCommand('https://x', 'edge 1', token)).toThrow(/node name/);
    expect(() => joinCommand('https://x', 'edge-1', 'EF1-$(id)')).toThrow(/token/);
  });
});
