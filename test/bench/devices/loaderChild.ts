/**
 * A load generator: one MQTT 3.1.1 connection per device (mqtt.js), each logging in as its
 * device, publishing `ef/devices/<id>/twin/reported` at QoS 1, every `telemetryEvery`-th publish
 * of a device a `telemetry` sample instead (0: reports only). Two modes, both bounded in time
 * and message count: `saturate` keeps `inflight` unacked publishes per device at all times
 * (closed loop: the broker's pace sets the rate), `paced` offers a fixed aggregate rate spread
 * round-robin over the devices (open loop: latency at a load the broker can carry).
 */
import { connect, type MqttClient } from 'mqtt';
import { z } from 'zod';
import { isTelemetryTurn, reportedPayload, reportedTopic, telemetryPayload, telemetryTopic } from './benchDevices.js';
import { serveRpc } from './childRpc.js';
import type { PublishCounts } from './devicesReport.js';
import { LatencyRecorder, microsSince } from './latencyRecorder.js';

const RequestSchema = z.discriminatedUnion('cmd', [
  z.object({
    cmd: z.literal('connect'), port: z.number().int(), devices: z.array(z.string()), password: z.string(),
    /** Per-device passwords (the edgecore target: the cloud issues each device its own); `password` for the others. */
    passwords: z.record(z.string(), z.string()).optional(),
    concurrency: z.number().int().min(1), timeoutMs: z.number().int(), t0Ms: z.number(),
  }),
  z.object({
    cmd: z.literal('run'), mode: z.enum(['saturate', 'paced']), durationMs: z.number().int().min(1), maxMessages: z.number().int().min(1),
    inflight: z.number().int().min(1), ratePerSecond: z.number().min(0), drainTimeoutMs: z.number().int(),
    telemetryEvery: z.number().int().min(0),
  }),
  z.object({ cmd: z.literal('acks'), fromUs: z.number(), toUs: z.number() }),
  z.object({ cmd: z.literal('ackTotal') }),
  z.object({ cmd: z.literal('close') }),
]);
type RunRequest = Extract<z.infer<typeof RequestSchema>, { cmd: 'run' }>;

interface SimDevice {
  topic: string;
  telemetryTopic: string;
  /** Publishes so far (picks the telemetry turns). */
  published: number;
  client: MqttClient;
  inflight: number;
}

export interface RunResult extends PublishCounts {
  startUs: number;
  endUs: number;
  drainMs: number;
}

const devices: SimDevice[] = [];
let t0Ms = 0;
let seq = 0;
let disconnects = 0;
/** Send and PUBACK time of every acknowledged publish (the hub acks only what it committed). */
const acks = new LatencyRecorder();

function connectOne(port: number, name: string, password: string, timeoutMs: number): Promise<SimDevice> {
  return new Promise((resolve, reject) => {
    const client = connect(`mqtt://127.0.0.1:${port}`, {
      clientId: name, username: name, password, protocolVersion: 4, clean: true,
      reconnectPeriod: 0, connectTimeout: timeoutMs, keepalive: 120,
    });
    client.once('connect', () => {
      client.on('close', () => { disconnects++; });
      resolve({ topic: reportedTopic(name), telemetryTopic: telemetryTopic(name), published: 0, client, inflight: 0 });
    });
    client.once('error', (err) => { client.end(true); reject(new Error(`${name}: ${err.message}`)); });
  });
}

async function connectAll(port: number, names: string[], passwordOf: (name: string) => string, concurrency: number, timeoutMs: number): Promise<number> {
  const started = Date.now();
  // With a shared password the first login pays for scrypt and the hub remembers the pair, so the others are cheap.
  if (names.length > 0) devices.push(await connectOne(port, names[0]!, passwordOf(names[0]!), timeoutMs));
  let next = 1;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++]!;
      devices.push(await connectOne(port, name, passwordOf(name), timeoutMs));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
  return Date.now() - started;
}

function run(req: RunRequest): Promise<RunResult> {
  const r: RunResult = {
    sent: 0, acked: 0, telemetrySent: 0, telemetryAcked: 0, failed: 0, skippedAtCap: 0, lagDropped: 0, leftInflight: 0,
    startUs: microsSince(t0Ms), endUs: 0, drainMs: 0, disconnects: 0,
  };
  const disconnectsBefore = disconnects;
  const startMs = Date.now();
  const endMs = startMs + req.durationMs;
  let inflight = 0;
  let finished = false;
  let onDrained: (() => void) | null = null;
  let ticker: NodeJS.Timeout | null = null;
  const open = () => !finished && r.sent < req.maxMessages && Date.now() < endMs;

  return new Promise((resolve) => {
    /** Stops sending, then waits (bounded) for the acks still outstanding. */
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(endTimer);
      if (ticker) clearInterval(ticker);
      r.endUs = microsSince(t0Ms);
      const drainStart = Date.now();
      const done = () => {
        onDrained = null;
        clearTimeout(drainTimer);
        r.drainMs = Date.now() - drainStart;
        r.leftInflight = inflight;
        r.disconnects = disconnects - disconnectsBefore;
        resolve(r);
      };
      const drainTimer = setTimeout(done, req.drainTimeoutMs);
      if (inflight === 0) done();
      else onDrained = done;
    };
    const endTimer = setTimeout(finish, req.durationMs);

    const publish = (device: SimDevice, closedLoop: boolean) => {
      const sentUs = microsSince(t0Ms);
      device.inflight++;
      inflight++;
      r.sent++;
      const telemetry = isTelemetryTurn(device.published++, req.telemetryEvery);
      if (telemetry) r.telemetrySent++;
      const [topic, payload] = telemetry
        ? [device.telemetryTopic, telemetryPayload(seq++, sentUs)]
        : [device.topic, reportedPayload(seq++, sentUs)];
      device.client.publish(topic, payload, { qos: 1 }, (err) => {
        device.inflight--;
        inflight--;
        if (err) r.failed++;
        else {
          r.acked++;
          if (telemetry) r.telemetryAcked++;
          acks.add(sentUs, microsSince(t0Ms));
        }
        if (closedLoop && open() && device.client.connected) publish(device, true);
        if (inflight === 0) {
          if (finished) onDrained?.();
          else if (closedLoop && !open()) finish();
        }
      });
    };

    if (req.mode === 'saturate') {
      for (const device of devices) {
        for (let i = 0; i < req.inflight && open(); i++) if (device.client.connected) publish(device, true);
      }
      return;
    }
    let offered = 0;
    let rr = 0;
    const catchUpLimit = Math.max(1, Math.ceil(req.ratePerSecond * 0.05));
    ticker = setInterval(() => {
      if (!open()) return finish();
      let due = Math.floor((req.ratePerSecond * (Date.now() - startMs)) / 1000) - offered;
      if (due > catchUpLimit) {
        r.lagDropped += due - catchUpLimit;
        offered += due - catchUpLimit;
        due = catchUpLimit;
      }
      for (; due > 0 && r.sent < req.maxMessages; due--) {
        offered++;
        const device = devices[rr++ % devices.length]!;
        if (device.inflight >= req.inflight || !device.client.connected) r.skippedAtCap++;
        else publish(device, false);
      }
    }, 5);
  });
}

serveRpc(async (raw) => {
  const request = RequestSchema.parse(raw);
  switch (request.cmd) {
    case 'connect': {
      t0Ms = request.t0Ms;
      const { passwords, password } = request;
      const passwordOf = (name: string) => passwords?.[name] ?? password;
      return { connectMs: await connectAll(request.port, request.devices, passwordOf, request.concurrency, request.timeoutMs) };
    }
    case 'run':
      if (devices.length === 0) throw new Error('no devices connected');
      return run(request);
    case 'acks':
      return acks.between(request.fromUs, request.toUs);
    case 'ackTotal':
      return acks.total;
    case 'close': {
      const all = devices.splice(0);
      await Promise.all(all.map((d) => d.client.endAsync(true)));
      return null;
    }
  }
});
