import { Option, type Command } from 'commander';
import type { Device, DeviceModel } from '../../protocol/index.js';
import { canonical, parseTwinArgs, type DeviceInput, type DeviceModelInput } from '../applyFile.js';
import type { DeviceCredentials } from '../../protocol/index.js';
import { ApiError, type ApiClient } from '../client.js';
import { emit, outputOption, type Context } from '../context.js';
import {
  DEVICE_COLUMNS, DEVICE_MODEL_COLUMNS, deviceFields, deviceModelRow, deviceRow, renderFields, renderTable, TWIN_COLUMNS, twinRows,
  type OutputFormat,
} from '../format.js';
import { parseLimit, parseName, parseSelectorFlag, parseSince, UsageError } from '../parse.js';
import { renderTelemetry } from '../telemetryFormat.js';
import { printWatch } from '../watchOutput.js';
import type { ApplyResult } from './applyResult.js';
import { registerDeviceCertificate } from './deviceCertificate.js';

/**
 * Devices from the command line: `get devices|device|devicemodels|telemetry`, `delete device|devicemodel`,
 * `twin set`, `device credentials`, and the apply steps for kinds DeviceModel and Device.
 */
export function registerDevices(program: Command, ctx: Context): void {
  registerDeviceGets(subcommand(program, 'get'), ctx);
  registerDeviceDeletes(subcommand(program, 'delete'), ctx);

  const twin = program.command('twin').description('change a device\'s twin');
  twin.command('set')
    .description('set desired properties (JSON values: 21.5, true, "text"; other text is a string; prop=null removes)')
    .argument('<device>', 'device name')
    .argument('<properties...>', 'property=value pairs')
    .addOption(new Option('--if-match <version>', 'only if the desired version is still this (else 409)').argParser(parseVersion))
    .addOption(outputOption())
    .action(async (device: string, args: string[], opts: { ifMatch?: number; output: OutputFormat }, cmd: Command) => {
      const name = parseName(device, 'device');
      const patch = parseTwinArgs(args);
      const view = await ctx.client(cmd).patchTwin(name, patch, opts.ifMatch);
      emit(ctx, opts.output, view, () => {
        const pending = Object.keys(view.delta);
        return `device/${name} desired version ${view.version.desired}`
          + (pending.length > 0 ? ` (not yet reported: ${pending.join(', ')})` : '') + '\n';
      });
    });

  const device = program.command('device').description('issue a device\'s MQTT credentials: a password, or an X.509 certificate');
  device.command('credentials')
    .description('issue a new MQTT password for a device (the old one stops working); printed once')
    .argument('<name>', 'device name')
    .action(async (name: string, _opts: object, cmd: Command) => {
      const credentials = await ctx.client(cmd).rotateDeviceCredentials(parseName(name, 'device'));
      ctx.out(credentialLines(credentials));
      ctx.err('note: the password is shown only now; run this command again to replace it\n');
    });
  registerDeviceCertificate(device, ctx);
}

/** Commands are grouped under `get`/`delete`, which other modules create. */
function subcommand(program: Command, name: string): Command {
  const found = program.commands.find((c) => c.name() === name);
  if (!found) throw new Error(`edgectl: register the "${name}" command before the device commands`);
  return found;
}

function registerDeviceGets(get: Command, ctx: Context): void {
  get.command('devicemodels')
    .description('list device models')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, cmd: Command) => {
      const list = await ctx.client(cmd).listDeviceModels();
      emit(ctx, opts.output, list, () => list.items.length === 0
        ? 'No device models found.\n'
        : renderTable(DEVICE_MODEL_COLUMNS, list.items.map(deviceModelRow)));
    });

  get.command('devices')
    .description('list devices with their node, model, whether they are online, and twin versions (desired/reported)')
    .option('--node <name>', 'only devices bound to this node', (v: string) => parseName(v, 'node'))
    .option('-l, --selector <selector>', 'label selector, e.g. "floor=1,zone in (a,b)"', parseSelectorFlag)
    .option('-w, --watch', 'after the list, print a row for every change (a device coming online, a new report) until interrupted')
    .addOption(outputOption())
    .action(async (opts: { node?: string; selector?: string; watch?: boolean; output: OutputFormat }, cmd: Command) => {
      const client = ctx.client(cmd);
      const filter = { node: opts.node, labelSelector: opts.selector };
      const [list, nodeList] = await Promise.all([client.listDevices(filter), client.listNodes()]);
      // A device naming a node that does not exist says so instead of <unknown> (as of the list).
      const nodes = new Set(nodeList.items.map((n) => n.metadata.name));
      const row = (d: Device) => deviceRow(d, nodes);
      if (opts.watch) {
        return printWatch(ctx, opts.output, { columns: DEVICE_COLUMNS, row, deletedColumn: 'ONLINE' }, list.items,
          (onEvent) => client.watchDevices({ ...filter, resourceVersion: list.resourceVersion }, onEvent));
      }
      emit(ctx, opts.output, list, () => list.items.length === 0
        ? 'No devices found.\n'
        : renderTable(DEVICE_COLUMNS, list.items.map(row)));
    });

  get.command('telemetry')
    .description('show a device\'s recent telemetry samples kept by cloudcore, oldest first, a column per property')
    .argument('<device>', 'device name')
    .option('--since <when>', 'samples after this: a span back from now (15m, 2h, 7d) or an ISO time', '15m')
    .option('--limit <n>', 'at most this many samples (1–10000)', parseLimit, 1000)
    .addOption(outputOption())
    .action(async (name: string, opts: { since: string; limit: number; output: OutputFormat }, cmd: Command) => {
      const since = parseSince(opts.since, ctx.now());
      const device = parseName(name, 'device');
      const answer = await ctx.client(cmd).getTelemetry(device, { since, limit: opts.limit });
      emit(ctx, opts.output, answer, () => {
        if (answer.items.length === 0) return `No telemetry of device ${device} since ${since}.\n`;
        // The API answers the oldest samples after `since`: say so when that cut the newest off.
        const cut = answer.items.length === opts.limit ? `(the first ${opts.limit} samples since ${since}; use a later --since or a larger --limit for newer ones)\n` : '';
        return renderTelemetry(answer.items) + cut;
      });
    });

  get.command('device')
    .description('show one device and its twin: desired, reported and what is still pending (DELTA *)')
    .argument('<name>', 'device name')
    .addOption(outputOption())
    .action(async (name: string, opts: { output: OutputFormat }, cmd: Command) => {
      const device = await ctx.client(cmd).getDevice(parseName(name, 'device'));
      emit(ctx, opts.output, device, () => {
        const now = ctx.now();
        const rows = twinRows(device, now);
        return renderFields(deviceFields(device, now)) + '\n'
          + (rows.length === 0 ? 'The twin is empty.\n' : renderTable(TWIN_COLUMNS, rows));
      });
    });
}

function registerDeviceDeletes(del: Command, ctx: Context): void {
  del.command('device')
    .description('delete a device (its telemetry goes too)')
    .argument('<name>', 'device name')
    .action(async (name: string, _opts: object, cmd: Command) => {
      const device = await ctx.client(cmd).deleteDevice(parseName(name, 'device'));
      ctx.out(`device/${device.metadata.name} deleted\n`);
    });

  del.command('devicemodel')
    .description('delete a device model no device uses')
    .argument('<name>', 'device model name')
    .action(async (name: string, _opts: object, cmd: Command) => {
      const model = await ctx.client(cmd).deleteDeviceModel(parseName(name, 'device model'));
      ctx.out(`devicemodel/${model.metadata.name} deleted\n`);
    });
}

function parseVersion(value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`--if-match must be the desired version (a whole number), got "${value}"`);
  return Number(value);
}

export function credentialLines(c: DeviceCredentials, indent = ''): string {
  return `${indent}username: ${c.username}\n${indent}password: ${c.password}\n`;
}

// ---- apply ----------------------------------------------------------------------------------

/** Create, or replace when it exists and differs; last writer wins, as for apps. */
export async function applyDeviceModel(client: ApiClient, input: DeviceModelInput): Promise<ApplyResult> {
  const { name, labels, annotations } = input.metadata;
  const body: DeviceModelInput = { kind: 'DeviceModel', metadata: { name, ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) }, spec: input.spec };
  const existing = await client.findDeviceModel(name);
  if (existing && sameOwnedParts(existing, body)) return 'unchanged';
  if (!existing && await createdOrExists(() => client.createDeviceModel(body))) return 'created';
  await client.replaceDeviceModel(body);
  return 'configured';
}

export interface DeviceApplyResult {
  result: ApplyResult;
  /** Only when the device was created: its MQTT password, never shown again. */
  credentials?: DeviceCredentials;
}

/**
 * Create, or replace when it exists and differs. A file without `spec.desired` keeps the
 * desired values set through the twin (`edgectl twin set`) instead of clearing them.
 */
export async function applyDevice(client: ApiClient, input: DeviceInput, desiredGiven: boolean): Promise<DeviceApplyResult> {
  const { name, labels, annotations } = input.metadata;
  const existing = await client.findDevice(name);
  const desired = desiredGiven || !existing ? input.spec.desired : existing.spec.desired;
  // The whole spec the file gives (the API's input schema parsed it): a field list here dropped
  // every field added later (the `mqtt` grant of a plain-MQTT device).
  const body: DeviceInput = {
    kind: 'Device',
    metadata: { name, ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) },
    spec: { ...input.spec, desired },
  };
  if (existing && sameOwnedParts(existing, body)) return { result: 'unchanged' };
  if (!existing) {
    try {
      const { credentials } = await client.createDevice(body);
      return { result: 'created', credentials };
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 409)) throw err;
    }
  }
  await client.replaceDevice(body);
  return { result: 'configured' };
}

/** True when `create` made it; false when it exists already (409), to be replaced instead. */
export async function createdOrExists(create: () => Promise<unknown>): Promise<boolean> {
  try {
    await create();
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) return false;
    throw err;
  }
}

/** Compares what the operator owns: labels, annotations and the spec fields the body carries. */
function sameOwnedParts(existing: Device | DeviceModel, body: DeviceInput | DeviceModelInput): boolean {
  const existingSpec: Record<string, unknown> = existing.spec;
  const ownedSpec = Object.fromEntries(Object.keys(body.spec).map((k) => [k, existingSpec[k]]));
  return canonical(ownedSpec) === canonical(body.spec)
    && canonical(existing.metadata.labels ?? {}) === canonical(body.metadata.labels ?? {})
    && canonical(existing.metadata.annotations ?? {}) === canonical(body.metadata.annotations ?? {});
}
