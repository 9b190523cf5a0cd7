import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Test CAs and client certificates made with Debian's openssl (P-256), for the broker's device
 * certificate checks: a CA of our own stands in for the cloud CA, another one for a stranger's.
 */

export interface TestCa { name: string; cert: string; key: string; certPem: string }
export interface TestCert { cert: string; key: string; serial: string }

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makeTestCa(dir: string, name: string): TestCa {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`]);
  return { name, cert, key, certPem: readFileSync(cert, 'utf8') };
}

/**
 * A client certificate for `subject` (e.g. `/CN=lamp-1/O=edgefleet-device`) signed by `ca`,
 * with serial `serialHex` (written with a leading zero, as the edge must strip it), valid for `days`.
 */
export function issueTestCert(dir: string, ca: TestCa, file: string, subject: string, serialHex: string, days = 1): TestCert {
  const cert = join(dir, `${file}.crt`);
  const key = join(dir, `${file}.key`);
  const csr = join(dir, `${file}.csr`);
  const ext = join(dir, `${file}.ext`);
  writeFileSync(ext, 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', subject]);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x00${serialHex}`, '-days', String(days), '-out', cert, '-extfile', ext]);
  return { cert, key, serial: serialHex.toLowerCase().replace(/^0+(?=.)/, '') };
}
