import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { DEVICE_CERT_ORG, deviceTopics, newKeyAndCsr, subjectAttribute, type DeviceCertificateResponse } from '../../protocol/index.js';
import { parseCaBundle } from '../caTrust.js';
import type { Context } from '../context.js';
import { errorText, parseName, UsageError } from '../parse.js';

/**
 * `edgectl device certificate NAME` and `… revoke NAME SERIAL`: an X.509 identity for a device
 * on its node's MQTT TLS listener. The key pair is made HERE and never sent: only the CSR goes
 * to cloudcore, which signs it with the cloud CA and puts the serial on the Device's allow-list.
 */
export function registerDeviceCertificate(device: Command, ctx: Context): void {
  const certificate = device.command('certificate')
    .description('make a key pair here, have the cloud CA sign it for the device, and write NAME.key (0600), NAME.crt and ca.crt; "revoke NAME SERIAL" takes one back')
    .argument('<name>', 'device name')
    .option('--out-dir <dir>', 'where to write the files', '.')
    .addOption(new Option('--lifetime-days <days>', 'validity (default: cloudcore\'s --device-cert-lifetime-seconds)').argParser(parseLifetimeDays))
    .action(async (name: string, opts: { outDir: string; lifetimeDays?: number }, cmd: Command) => {
      const device = parseName(name, 'device');
      const client = ctx.client(cmd);
      const files = { key: join(opts.outDir, `${device}.key`), cert: join(opts.outDir, `${device}.crt`), ca: join(opts.outDir, 'ca.crt') };
      const { keyPem, csrPem } = await newKeyAndCsr(device, DEVICE_CERT_ORG);
      // The key file first, created exclusively: an existing key is never overwritten, and no
      // certificate is issued for a key that could not be kept.
      createKeyFile(opts.outDir, files.key, keyPem);
      let issued: DeviceCertificateResponse;
      try {
        issued = await client.issueDeviceCertificate(device, csrPem, opts.lifetimeDays === undefined ? undefined : opts.lifetimeDays * 86_400);
        checkIssued(issued, device, keyPem);
      } catch (err) {
        rmSync(files.key, { force: true });
        throw err;
      }
      writeFileSync(files.cert, issued.certificate, { mode: 0o644 });
      writeFileSync(files.ca, issued.caBundle, { mode: 0o644 });
      ctx.out(issuedText(device, issued, files));
    });

  certificate.command('revoke')
    .description('take a certificate off the device\'s allow-list: its node refuses it from the next sync on, and closes its connections')
    .argument('<name>', 'device name')
    .argument('<serial>', 'the certificate\'s serial (hex, as `edgectl device certificate` printed it)')
    .action(async (name: string, serial: string, _opts: object, cmd: Command) => {
      const device = parseName(name, 'device');
      const answer = await ctx.client(cmd).revokeDeviceCertificate(device, parseSerial(serial));
      ctx.out(`device/${answer.device} certificate ${parseSerial(serial)} revoked; ${answer.certificates.length} certificate(s) left\n`);
    });
}

function parseLifetimeDays(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 3650) {
    throw new UsageError(`invalid --lifetime-days "${value}": must be a whole number of days from 1 to 3650`);
  }
  return Number(value);
}

/** As the cloud keeps serials: lower-case hex without leading zeros (what `openssl x509 -serial` prints is accepted too). */
function parseSerial(value: string): string {
  const hex = value.trim().replace(/^serial=/i, '').replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{1,64}$/.test(hex)) throw new UsageError(`invalid serial "${value}": must be the certificate's serial in hex`);
  return hex.replace(/^0+(?=.)/, '');
}

function createKeyFile(dir: string, path: string, keyPem: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(path, keyPem, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UsageError(`${path} exists: refusing to overwrite a device's private key (move it away, or use --out-dir)`);
    }
    throw new UsageError(`cannot write ${path}: ${errorText(err)}`);
  }
}

/** The answer must be a certificate for this device over the key made here, and a readable CA bundle. */
function checkIssued(issued: DeviceCertificateResponse, device: string, keyPem: string): void {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(issued.certificate);
  } catch (err) {
    throw new UsageError(`cloudcore's answer holds no readable certificate: ${errorText(err)}`);
  }
  if (!certificate.checkPrivateKey(createPrivateKey(keyPem))) throw new UsageError('cloudcore answered a certificate for another key: not written');
  if (!subjectAttribute(certificate.subject, 'CN').includes(device)) throw new UsageError(`cloudcore answered a certificate for ${certificate.subject.replace(/\n/g, ', ')}, not device ${device}: not written`);
  parseCaBundle(issued.caBundle, 'cloudcore\'s CA bundle');
}

function issuedText(device: string, issued: DeviceCertificateResponse, files: { key: string; cert: string; ca: string }): string {
  const topics = deviceTopics(device);
  return [
    `device/${device} certificate issued: serial ${issued.serial}, valid until ${issued.notAfter}`,
    `  key:         ${files.key} (0600; it never left this machine: copy it to the device only)`,
    `  certificate: ${files.cert}`,
    `  CA bundle:   ${files.ca}`,
    'On the device (its node\'s MQTT TLS listener; --cafile is the CA of that listener\'s certificate):',
    `  mosquitto_pub -h <node address> -p <mqtt TLS port> --cafile ${files.ca} --cert ${files.cert} --key ${files.key} -V mqttv311 -i ${device} -q 1 -t ${topics.reported} -m '{"properties":{}}'`,
    `Revoke it with: edgectl device certificate revoke ${device} ${issued.serial}`,
    '',
  ].join('\n');
}
