import type { Logger } from 'pino';
import { z } from 'zod';
import { PropertyValueSchema, checkPropertyValue, type ModelProperty, type PropertyValue } from '../../protocol/index.js';
import { backoffDelayMs, type BackoffPolicy } from './backoff.js';
import { reportTickMs, selectDueReports, type ReportState } from './cycles.js';
import { differingDesired, planWrites, type PlannedWrite } from './delta.js';
import type { MapperDevice } from './deviceList.js';
import type { DeviceConnection, ProtocolDriver } from './driver.js';
import { errorMessage, withTimeout } from './timeout.js';

export type DeviceState = 'connecting' | 'connected' | 'backingOff' | 'stopped';

/** One device as `MapperLoop.status()` shows it. */
export interface DeviceHealth {
  name: string;
  state: DeviceState;
  lastError: string | null;
  lastErrorAt: string | null;
  /** Failed connects/reads/writes since the last successful read or write. */
  consecutiveFailures: number;
  /** When the next connection attempt is due while backing off. */
  nextRetryAt: string | null;
  connectedAt: string | null;
  lastReportAt: string | null;
  /** Last values read from the device. */
  values: Record<string, PropertyValue>;
  /** Properties whose last read or write failed, or that cannot be served at all. */
  propertyErrors: Record<string, string>;
}

export interface DeviceWorkerContext {
  driver: ProtocolDriver;
  log: Logger;
  backoff: BackoffPolicy;
  /** Failed operations in a row after which the connection is dropped and re-opened. */
  maxConsecutiveFailures: number;
  connectTimeoutMs: number;
  operationTimeoutMs: number;
  /** Publishes `{"properties": ...}` as the device's reported twin; false when it could not (MQTT down). */
  report(device: string, properties: Record<string, PropertyValue>): boolean;
  /** The connection to the device came up (reachable) or failed or was dropped (not, with why). */
  reachability(device: string, reachable: boolean, error: string | null): void;
}

/** `twin/desired` and `twin/delta` payloads: `{"properties": {...}, "version": N}`. */
const TwinMessageSchema = z.object({
  properties: z.record(z.string(), z.unknown()),
  version: z.number().int().nonnegative().optional(),
});

interface PropertyRuntime {
  name: string;
  model: ModelProperty;
  visitor: Record<string, unknown>;
  collectCycleMs: number;
  report: ReportState;
  reading: boolean;
  error?: string;
}

/**
 * Runs one device: keeps a connection open (re-opening it with back-off), reads each property
 * on its collect cycle, publishes changed values on the report cycles, and writes desired
 * values. Everything a device does wrong ends up in its health, never in an exception that
 * could reach the other devices.
 */
export class DeviceWorker {
  private readonly props = new Map<string, PropertyRuntime>();
  private readonly unservable: Record<string, string> = {};
  private readonly log: Logger;
  private connection: DeviceConnection | null = null;
  /** Serialises every operation on the connection: buses like Modbus RTU are half-duplex. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly timers: NodeJS.Timeout[] = [];
  private retryTimer: NodeJS.Timeout | null = null;
  private wakeFromBackoff: (() => void) | null = null;
  private connectLoopRunning = false;
  private stopped = false;
  /** What the cloud wants: from `twin/desired` (whole), merged with `twin/delta`. */
  private desiredTarget: Record<string, PropertyValue>;
  private desiredVersion = -1;

  private state: DeviceState = 'connecting';
  private lastError: string | null = null;
  private lastErrorAt: string | null = null;
  private consecutiveFailures = 0;
  private nextRetryAt: string | null = null;
  private connectedAt: string | null = null;
  private lastReportAt: string | null = null;

  constructor(readonly device: MapperDevice, private readonly ctx: DeviceWorkerContext) {
    this.log = ctx.log.child({ device: device.name });
    // The list's desired is a starting point until the broker hands over the retained `twin/desired`.
    this.desiredTarget = { ...device.desired };
    for (const visitor of device.properties) {
      const model = device.model.properties.find((p) => p.name === visitor.name);
      if (!model) {
        this.unservable[visitor.name] = `the model has no property "${visitor.name}"`;
        continue;
      }
      this.props.set(visitor.name, {
        name: visitor.name, model, visitor: visitor.visitor, collectCycleMs: visitor.collectCycleMs,
        report: { reportCycleMs: visitor.reportCycleMs }, reading: false,
      });
    }
    for (const [name, reason] of Object.entries(this.unservable)) this.log.warn({ property: name }, `property skipped: ${reason}`);
  }

  start(): void {
    for (const p of this.props.values()) {
      this.timers.push(setInterval(() => void this.readProperty(p), p.collectCycleMs));
    }
    const tick = reportTickMs([...this.props.values()].map((p) => p.report.reportCycleMs));
    this.timers.push(setInterval(() => this.reportDue(tick / 2), tick));
    this.ensureConnecting(false);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.state = 'stopped';
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wakeFromBackoff?.();
    const conn = this.connection;
    this.connection = null;
    if (conn) await withTimeout(conn.close(), 5000, 'closing the connection').catch((err: unknown) => this.log.debug({ err: errorMessage(err) }, 'close failed'));
  }

  health(): DeviceHealth {
    const values: Record<string, PropertyValue> = {};
    const propertyErrors: Record<string, string> = { ...this.unservable };
    for (const p of this.props.values()) {
      if (p.report.value !== undefined) values[p.name] = p.report.value;
      if (p.error) propertyErrors[p.name] = p.error;
    }
    return {
      name: this.device.name, state: this.state, lastError: this.lastError, lastErrorAt: this.lastErrorAt,
      consecutiveFailures: this.consecutiveFailures, nextRetryAt: this.nextRetryAt, connectedAt: this.connectedAt,
      lastReportAt: this.lastReportAt, values, propertyErrors,
    };
  }

  /** After an MQTT reconnect nothing is known to be reported: send every value again. */
  forgetReported(): void {
    for (const p of this.props.values()) {
      p.report.reportedValue = undefined;
      p.report.reportedAt = undefined;
    }
  }

  /** A `twin/desired` (whole desired section) or `twin/delta` (what still differs) message. */
  handleTwinMessage(kind: 'desired' | 'delta', payload: unknown): void {
    const parsed = TwinMessageSchema.safeParse(payload);
    if (!parsed.success) {
      this.log.warn({ topic: `twin/${kind}`, problem: parsed.error.issues[0]?.message }, 'ignoring malformed twin message');
      return;
    }
    const { properties, version } = parsed.data;
    const values: Record<string, PropertyValue> = {};
    for (const [name, value] of Object.entries(properties)) {
      const ok = PropertyValueSchema.safeParse(value);
      if (ok.success) values[name] = ok.data;
    }
    if (version !== undefined) {
      if (version < this.desiredVersion) {
        this.log.debug({ version, seen: this.desiredVersion }, `ignoring stale twin/${kind}`);
        return;
      }
      // The edge sends twin/desired and twin/delta for one change with the same version: the
      // second brings nothing the first did not, and acting on it wrote every value twice.
      if (version === this.desiredVersion && this.alreadyTargeted(properties, values)) {
        this.log.debug({ version }, `twin/${kind} repeats what this version already asked for`);
        return;
      }
      this.desiredVersion = version;
    }
    let requested: Record<string, unknown>;
    if (kind === 'desired') {
      this.desiredTarget = values;
      requested = differingDesired(values, this.currentValues());
    } else {
      this.desiredTarget = { ...this.desiredTarget, ...values };
      requested = properties;
    }
    void this.applyWrites(requested, true);
  }

  /**
   * True when every value of a twin message is already the desired target and none of those
   * properties has a failed read or write pending (a repeat then still retries a failed write).
   */
  private alreadyTargeted(properties: Record<string, unknown>, values: Record<string, PropertyValue>): boolean {
    return Object.keys(properties).every((name) => Object.hasOwn(values, name)
      && this.desiredTarget[name] === values[name] && this.props.get(name)?.error === undefined);
  }

  // ---- connection ----------------------------------------------------------------------------

  private ensureConnecting(backOffFirst: boolean): void {
    if (this.connectLoopRunning || this.stopped) return;
    this.connectLoopRunning = true;
    void this.connectLoop(backOffFirst).finally(() => {
      this.connectLoopRunning = false;
      // A drop that raced with the loop's exit must not leave the device without a connection.
      if (!this.connection && !this.stopped) this.ensureConnecting(true);
    });
  }

  private async connectLoop(backOffFirst: boolean): Promise<void> {
    if (backOffFirst) await this.backOff();
    while (!this.stopped && !this.connection) {
      this.state = 'connecting';
      this.nextRetryAt = null;
      try {
        const conn = await withTimeout(this.ctx.driver.connect(this.device), this.ctx.connectTimeoutMs, 'connecting',
          (late) => void late.close().catch(() => undefined));
        if (this.stopped) {
          await conn.close().catch(() => undefined);
          return;
        }
        this.connection = conn;
        this.state = 'connected';
        this.connectedAt = new Date().toISOString();
        this.log.info({ afterFailures: this.consecutiveFailures }, 'device connected');
        this.ctx.reachability(this.device.name, true, null);
        void this.afterConnect(conn);
      } catch (err) {
        if (this.stopped) return;
        this.recordFailure(err, 'connect');
        this.ctx.reachability(this.device.name, false, this.lastError);
        await this.backOff();
      }
    }
  }

  private backOff(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const delayMs = backoffDelayMs(Math.max(1, this.consecutiveFailures), this.ctx.backoff);
    this.state = 'backingOff';
    this.nextRetryAt = new Date(Date.now() + delayMs).toISOString();
    this.log.warn({ failures: this.consecutiveFailures, retryInMs: delayMs, lastError: this.lastError }, 'device unavailable, backing off');
    return new Promise((resolve) => {
      this.wakeFromBackoff = () => { this.wakeFromBackoff = null; resolve(); };
      this.retryTimer = setTimeout(() => { this.retryTimer = null; this.wakeFromBackoff?.(); }, delayMs);
    });
  }

  /** First reads at once (not a whole collect cycle later), then bring the device to desired. */
  private async afterConnect(conn: DeviceConnection): Promise<void> {
    await Promise.all([...this.props.values()].map((p) => this.readProperty(p)));
    if (this.connection !== conn) return;
    const requested = differingDesired(this.desiredTarget, this.currentValues());
    if (Object.keys(requested).length > 0) await this.applyWrites(requested, false);
  }

  private dropConnection(reason: string): void {
    const conn = this.connection;
    if (!conn) return;
    this.connection = null;
    this.connectedAt = null;
    this.log.warn({ reason }, 'dropping the device connection to re-open it');
    this.ctx.reachability(this.device.name, false, reason);
    void conn.close().catch(() => undefined);
    this.ensureConnecting(true);
  }

  /** Queues `op` behind the connection's other operations; fails if the connection went away meanwhile. */
  private run<T>(conn: DeviceConnection, what: string, op: (c: DeviceConnection) => Promise<T>): Promise<T> {
    const result = this.queue.then(() => {
      if (this.connection !== conn) throw new Error('the connection was closed');
      return withTimeout(op(conn), this.ctx.operationTimeoutMs, what);
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  private recordFailure(err: unknown, what: string): void {
    this.consecutiveFailures += 1;
    this.lastError = `${what}: ${errorMessage(err)}`;
    this.lastErrorAt = new Date().toISOString();
    // The first failure is news; the ones after it show up in the back-off lines and in status().
    const level = this.consecutiveFailures === 1 ? 'warn' : 'debug';
    this.log[level]({ failures: this.consecutiveFailures, err: this.lastError }, 'device operation failed');
  }

  private recordOperationFailure(conn: DeviceConnection, err: unknown, what: string): void {
    if (this.connection !== conn || this.stopped) return; // already being re-opened
    this.recordFailure(err, what);
    if (this.consecutiveFailures >= this.ctx.maxConsecutiveFailures) this.dropConnection(this.lastError ?? what);
  }

  // ---- reading and reporting -----------------------------------------------------------------

  private currentValues(): Map<string, PropertyValue | undefined> {
    return new Map([...this.props.values()].map((p) => [p.name, p.report.value]));
  }

  private async readProperty(p: PropertyRuntime): Promise<void> {
    const conn = this.connection;
    if (!conn || p.reading || this.stopped) return;
    p.reading = true;
    try {
      const value = await this.run(conn, `reading ${p.name}`, (c) => c.read(p.visitor, p.model));
      this.acceptRead(p, value);
      this.consecutiveFailures = 0;
    } catch (err) {
      p.error = `read: ${errorMessage(err)}`;
      this.recordOperationFailure(conn, err, `read ${p.name}`);
    } finally {
      p.reading = false;
    }
  }

  /** A value the model refuses (wrong type, out of range) is not reported: the edge would refuse it too. */
  private acceptRead(p: PropertyRuntime, value: PropertyValue): boolean {
    const problem = checkPropertyValue(p.model, value, false);
    if (problem) {
      if (p.error !== problem) this.log.warn({ property: p.name, value }, `device value not reported: ${problem}`);
      p.error = problem;
      return false;
    }
    p.error = undefined;
    p.report.value = value;
    return true;
  }

  private reportDue(toleranceMs: number): void {
    const states = new Map([...this.props.values()].map((p) => [p.name, p.report]));
    const due = selectDueReports(states, Date.now(), toleranceMs);
    if (Object.keys(due).length > 0) this.publish(due);
  }

  private publish(values: Record<string, PropertyValue>): void {
    if (!this.ctx.report(this.device.name, values)) return; // stays due; sent when MQTT is back
    const now = Date.now();
    this.lastReportAt = new Date(now).toISOString();
    for (const [name, value] of Object.entries(values)) {
      const p = this.props.get(name);
      if (p) {
        p.report.reportedValue = value;
        p.report.reportedAt = now;
      }
    }
  }

  // ---- writing -------------------------------------------------------------------------------

  private async applyWrites(requested: Record<string, unknown>, logWhenOffline: boolean): Promise<void> {
    const visitorNames = new Set(this.props.keys());
    const { writes, skipped } = planWrites(requested, this.device.model, visitorNames);
    for (const s of skipped) this.log.warn({ property: s.name }, `desired value not written: ${s.reason}`);
    if (writes.length === 0) return;
    const conn = this.connection;
    if (!conn) {
      if (logWhenOffline) this.log.info({ properties: writes.map((w) => w.name) }, 'device not connected; desired values are written once it is');
      return;
    }
    for (const w of writes) await this.writeOne(conn, w);
  }

  /** Write, read back, report at once: reported then shows what the device really holds. */
  private async writeOne(conn: DeviceConnection, w: PlannedWrite): Promise<void> {
    const p = this.props.get(w.name);
    if (!p) return;
    try {
      await this.run(conn, `writing ${p.name}`, (c) => c.write(p.visitor, p.model, w.value));
      const readBack = await this.run(conn, `reading back ${p.name}`, (c) => c.read(p.visitor, p.model));
      this.consecutiveFailures = 0;
      if (readBack !== w.value) this.log.warn({ property: p.name, desired: w.value, readBack }, 'the device holds a different value than was written');
      else this.log.info({ property: p.name, value: w.value }, 'desired value written');
      if (this.acceptRead(p, readBack)) this.publish({ [p.name]: readBack });
    } catch (err) {
      p.error = `write: ${errorMessage(err)}`;
      this.recordOperationFailure(conn, err, `write ${p.name}`);
    }
  }
}
