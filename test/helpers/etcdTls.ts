import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ETCD_BINARY, freeLoopbackPort } from './etcdCluster.js';

/**
 * TLS material for an etcd member on 127.0.0.1 (made with openssl through execFile, in a dir the
 * caller owns and removes) and a single TLS member that demands client certificates: what the
 * `--etcd-ca`/`--etcd-cert`/`--etcd-key` checks are tested against.
 */

const run = promisify(execFile);

export interface EtcdTlsMaterial {
  caFile: string;
  /** A CA that signed nothing the member has (the "wrong CA"). */
  otherCaFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
}

async function openssl(args: string[]): Promise<void> {
  await run('openssl', args);
}

async function newCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const [cert, key] = [join(dir, `${name}.crt`), join(dir, `${name}.key`)];
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`]);
  return { cert, key };
}

async function issue(dir: string, name: string, ca: { cert: string; key: string }, extensions: string): Promise<{ cert: string; key: string }> {
  const [cert, key, csr, ext] = ['crt', 'key', 'csr', 'ext'].map((suffix) => join(dir, `${name}.${suffix}`)) as [string, string, string, string];
  await writeFile(ext, extensions);
  await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
  return { cert, key };
}

export async function makeEtcdTlsMaterial(dir: string): Promise<EtcdTlsMaterial> {
  const ca = await newCa(dir, 'etcd-ca');
  const other = await newCa(dir, 'other-ca');
  const server = await issue(dir, 'etcd-server', ca, 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  const client = await issue(dir, 'cloudcore-client', ca, 'extendedKeyUsage=clientAuth\n');
  return {
    caFile: ca.cert, otherCaFile: other.cert, serverCertFile: server.cert, serverKeyFile: server.key,
    clientCertFile: client.cert, clientKeyFile: client.key,
  };
}

/** One etcd member serving https on loopback that requires a client certificate signed by the CA. */
export async function startTlsEtcdMember(dir: string, tls: EtcdTlsMaterial): Promise<{ clientUrl: string; process: ChildProcess }> {
  const [client, peer] = [await freeLoopbackPort(), await freeLoopbackPort()];
  const clientUrl = `https://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const child = spawn(ETCD_BINARY, [
    '--name', 'tls0', '--data-dir', join(dir, 'tls0'),
    '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `tls0=${peerUrl}`, '--initial-cluster-state', 'new', '--initial-cluster-token', `edgefleet-tls-${dir}`,
    '--cert-file', tls.serverCertFile, '--key-file', tls.serverKeyFile, '--trusted-ca-file', tls.caFile, '--client-cert-auth',
    '--heartbeat-interval', '50', '--election-timeout', '500', '--log-level', 'error', '--logger', 'zap',
  ], { stdio: ['ignore', 'ignore', 'ignore'] });
  return { clientUrl, process: child };
}
