import { describe, expect, it } from 'vitest';
import { isLoopbackHost } from '../../protocol/index.js';
import { basicAuthPassword, hostHeaderIsLoopback, parseStatusPasswordFile, statusPasswordMatches } from './localAuth.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('local status auth rules', () => {
  it('loopback means 127/8, ::1 and localhost; every-interface binds and names are not loopback', () => {
    for (const h of ['127.0.0.1', '127.0.0.2', '127.255.1.9', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) {
      expect(isLoopbackHost(h), h).toBe(true);
    }
    for (const h of ['0.0.0.0', '::', '192.168.1.20', '10.0.0.1', 'edge-7.local', '::ffff:10.0.0.1', '128.0.0.1', '', 'fe80::1']) {
      expect(isLoopbackHost(h), h).toBe(false);
    }
  });

  it('the password file gives its first line, and refuses an empty or short one naming the file', () => {
    expect(parseStatusPasswordFile('  s3cret-pass \nignored\n', '/etc/p')).toBe('s3cret-pass');
    expect(() => parseStatusPasswordFile('\n', '/etc/p')).toThrow('status password file /etc/p is empty');
    expect(() => parseStatusPasswordFile('short', '/etc/p')).toThrow(/too short.*at least 8/);
  });

  it('Basic auth: any user name, the password must match; other schemes and garbage do not', () => {
    expect(basicAuthPassword(basic('engineer', 'pa:ss'))).toBe('pa:ss');
    expect(statusPasswordMatches('right-password', basic('anyone', 'right-password'))).toBe(true);
    expect(statusPasswordMatches('right-password', basic('anyone', 'wrong-password'))).toBe(false);
    expect(statusPasswordMatches('right-password', 'Bearer right-password')).toBe(false);
    expect(statusPasswordMatches('right-password', undefined)).toBe(false);
    expect(statusPasswordMatches('right-password', 'Basic !!!')).toBe(false);
    expect(statusPasswordMatches('right-password', `Basic ${Buffer.from('no-colon').toString('base64')}`)).toBe(false);
  });

  it('the Host header must name a loopback host (DNS rebinding)', () => {
    for (const h of ['127.0.0.1:10350', 'localhost:10350', '[::1]:10350', 'localhost', undefined]) expect(hostHeaderIsLoopback(h), String(h)).toBe(true);
    for (const h of ['evil.example:10350', 'evil.example', '192.168.1.2:10350']) expect(hostHeaderIsLoopback(h), h).toBe(false);
  });
});
