import { z } from 'zod';
import { WorkloadMqttGrantSchema } from './mqttFilters.js';

/**
 * What a workload runs: a process or a container, with its probes and the configs and
 * secrets it uses. Part of an App (operator input) and of every Workload bound to a node.
 */

/** DNS-1123 name, as for objects (kept here so templates have no import cycle). */
const RefName = z.string().min(1).max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be lowercase alphanumerics, "-" or ".", starting and ending alphanumeric');

export const EnvNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid environment variable name');

// ---- probes ---------------------------------------------------------------------------------

const probeTiming = {
  initialDelaySeconds: z.number().int().min(0).max(3600).default(0),
  periodSeconds: z.number().int().min(1).max(3600).default(10),
  timeoutSeconds: z.number().int().min(1).max(600).default(1),
  /** Consecutive failures before the probe counts as failed. */
  failureThreshold: z.number().int().min(1).max(100).default(3),
  /** Consecutive successes before a failed probe counts as passing again. */
  successThreshold: z.number().int().min(1).max(100).default(1),
};

const port = z.number().int().min(1).max(65535);

/** Exactly one of exec, httpGet, tcpSocket, as in Kubernetes. */
export const ProbeSchema = z.strictObject({
  exec: z.strictObject({ command: z.array(z.string()).min(1) }).optional(),
  httpGet: z.strictObject({
    port, path: z.string().startsWith('/').default('/'), host: z.string().default('127.0.0.1'),
    scheme: z.enum(['HTTP', 'HTTPS']).default('HTTP'),
  }).optional(),
  tcpSocket: z.strictObject({ port, host: z.string().default('127.0.0.1') }).optional(),
  ...probeTiming,
}).refine((p) => [p.exec, p.httpGet, p.tcpSocket].filter((x) => x !== undefined).length === 1,
  { message: 'set exactly one of exec, httpGet or tcpSocket' });
export type Probe = z.infer<typeof ProbeSchema>;

export const ProbesSchema = z.strictObject({
  /** Failing liveness restarts the workload (per its restart policy and back-off). */
  liveness: ProbeSchema.optional(),
  /** Readiness only feeds `status.ready`. */
  readiness: ProbeSchema.optional(),
});

// ---- configs and secrets used by a workload -------------------------------------------------

/**
 * Use of a Config or Secret: as environment variables (every key, optionally prefixed) and/or
 * as files (one per key) under `mountPath`. For a process the files live in an edge-managed
 * directory named by `EF_CONFIG_DIR_<NAME>` / `EF_SECRET_DIR_<NAME>`; a container gets them
 * bind-mounted read-only at `mountPath`.
 */
export const DataRefSchema = z.strictObject({
  name: RefName,
  env: z.boolean().default(false),
  envPrefix: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must start an environment variable name').optional(),
  mountPath: z.string().startsWith('/', 'must be an absolute path')
    .refine((p) => !p.split('/').includes('..'), 'must not contain ".." segments').optional(),
});
export type DataRef = z.infer<typeof DataRefSchema>;

/**
 * A workload that is a device mapper for one protocol on its node. edgecore gives it the node's
 * mapper credential for that protocol and says where the broker and the device list are, as
 * `EF_MAPPER_*` variables (docs/mqtt.md, "Mappers as workloads"): one app serves every node.
 */
export const DeviceMapperSchema = z.strictObject({
  /** As devices name it in `spec.protocol.name`: modbus, opcua, virtual, or a mapper of your own. */
  protocol: z.string().min(1).max(64),
});
export type DeviceMapper = z.infer<typeof DeviceMapperSchema>;

const templateCommon = {
  probes: ProbesSchema.default({}),
  deviceMapper: DeviceMapperSchema.optional(),
  /**
   * The workload's own identity on the node's device broker, confined to these topic filters
   * (docs/mqtt.md, "Application identities and grants"). Unset: no broker credential at all.
   */
  mqtt: WorkloadMqttGrantSchema.optional(),
  configs: z.array(DataRefSchema).max(32).default([]),
  secrets: z.array(DataRefSchema).max(32).default([]),
};

export const RestartPolicySchema = z.enum(['Always', 'OnFailure', 'Never']);
export type RestartPolicy = z.infer<typeof RestartPolicySchema>;

const EnvSchema = z.record(EnvNameSchema, z.string());

/** A numeric user or group id, as Kubernetes' securityContext takes them. */
const PosixIdSchema = z.number().int().min(0).max(2 ** 31 - 2);

export const ProcessTemplateSchema = z.strictObject({
  runtime: z.literal('process'),
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: EnvSchema.default({}),
  workingDir: z.string().optional(),
  restartPolicy: RestartPolicySchema.default('Always'),
  /**
   * The uid the process, its exec probes and `edgectl exec` run as. Unset: the node's workload
   * user (`edgefleet-workload` when edgecore runs as root). 0 only where the node allows root workloads.
   */
  runAsUser: PosixIdSchema.optional(),
  /** Its gid. Unset: the primary group of runAsUser (or of the node's workload user). */
  runAsGroup: PosixIdSchema.optional(),
  /** Supplementary groups, e.g. `dialout` for a serial port. Unset: none. */
  supplementalGroups: z.array(PosixIdSchema).max(32).optional(),
  ...templateCommon,
});
export type ProcessTemplate = z.infer<typeof ProcessTemplateSchema>;

/**
 * Image reference as Docker parses it: [registry[:port]/]path[:tag][@digest], lowercase path.
 * Checked here so a typo is refused by the API instead of failing on every node.
 */
const imageReference = /^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

/** Absolute path with no `..` segment: volumes must not climb out of where they are put. */
const safeAbsolutePath = z.string().min(1).max(4096)
  .refine((p) => p.startsWith('/'), 'must be an absolute path')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".." segments');

export const ContainerPortSchema = z.strictObject({
  containerPort: z.number().int().min(1).max(65535),
  hostPort: z.number().int().min(1).max(65535).optional(),
  hostIP: z.string().optional(),
  protocol: z.enum(['tcp', 'udp']).default('tcp'),
});

export const VolumeMountSchema = z.strictObject({
  mountPath: safeAbsolutePath,
  /** A directory on the node. */
  hostPath: safeAbsolutePath.optional(),
  /** An app-scoped data volume kept by the runtime across container re-creations. */
  dataVolume: RefName.optional(),
  readOnly: z.boolean().default(false),
}).refine((v) => (v.hostPath === undefined) !== (v.dataVolume === undefined), { message: 'set exactly one of hostPath or dataVolume' });

export const ResourceLimitsSchema = z.strictObject({
  /** Bytes. */
  memoryBytes: z.number().int().positive().optional(),
  /** CPUs, e.g. 0.5. */
  cpus: z.number().positive().max(1024).optional(),
});

export const ContainerTemplateSchema = z.strictObject({
  runtime: z.literal('container'),
  image: z.string().max(512).regex(imageReference, 'must be an image reference like "registry.local:5000/team/app:1.2"'),
  imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
  /** Node-local path of an image tarball (`docker save` format) to load when the image is missing: air-gapped sites. */
  imageArchive: safeAbsolutePath.optional(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  env: EnvSchema.default({}),
  workingDir: z.string().optional(),
  ports: z.array(ContainerPortSchema).default([]),
  volumes: z.array(VolumeMountSchema).default([]),
  resources: ResourceLimitsSchema.default({}),
  restartPolicy: RestartPolicySchema.default('Always'),
  /** Share the node's network namespace (as Kubernetes' hostNetwork): its loopback, its ports. */
  hostNetwork: z.boolean().optional(),
  ...templateCommon,
}).superRefine((t, ctx) => {
  if (t.hostNetwork === true && t.ports.length > 0) {
    ctx.addIssue({ code: 'custom', path: ['ports'], message: 'do not apply with hostNetwork: the container listens on the node\'s ports directly' });
  }
  if (t.deviceMapper !== undefined && t.hostNetwork !== true) {
    ctx.addIssue({ code: 'custom', path: ['hostNetwork'], message: 'must be true for a deviceMapper container: it reaches the edge broker and device list on the node\'s loopback' });
  }
});
export type ContainerTemplate = z.infer<typeof ContainerTemplateSchema>;

/** What a workload runs. A discriminated union on `runtime` so new runtimes slot in. */
export const WorkloadTemplateSchema = z.discriminatedUnion('runtime', [ProcessTemplateSchema, ContainerTemplateSchema]);
export type WorkloadTemplate = z.infer<typeof WorkloadTemplateSchema>;

