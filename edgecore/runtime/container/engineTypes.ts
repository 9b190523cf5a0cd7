import { z } from 'zod';

/**
 * The Docker Engine API shapes the client relies on (v1.41; Podman's compat API serves the
 * same). Responses are checked with these zod schemas; unknown fields are dropped, and the
 * nulls Podman sends where Docker sends empty lists or maps are normalised.
 */

const LabelsSchema = z.record(z.string(), z.string()).nullish().transform((v) => v ?? {});

export const EngineVersionSchema = z.object({
  Version: z.string(),
  ApiVersion: z.string().optional(),
  Os: z.string().optional(),
  Arch: z.string().optional(),
  Components: z.array(z.object({ Name: z.string(), Version: z.string() })).nullish(),
});
export type EngineVersion = z.infer<typeof EngineVersionSchema>;

export const ImageInspectSchema = z.object({
  Id: z.string(),
  RepoTags: z.array(z.string()).nullish().transform((v) => v ?? []),
});
export type ImageInspect = z.infer<typeof ImageInspectSchema>;

const PortBindingSchema = z.object({ HostIp: z.string().optional(), HostPort: z.string().optional() });

export const ContainerInspectSchema = z.object({
  Id: z.string(),
  Name: z.string(),
  State: z.object({
    Status: z.string(),
    Running: z.boolean(),
    Pid: z.number().int(),
    ExitCode: z.number().int(),
    Error: z.string().nullish().transform((v) => v ?? ''),
    OOMKilled: z.boolean().nullish().transform((v) => v ?? false),
    StartedAt: z.string().nullish().transform((v) => v ?? ''),
    FinishedAt: z.string().nullish().transform((v) => v ?? ''),
  }),
  Config: z.object({
    Image: z.string(),
    Labels: LabelsSchema,
    Env: z.array(z.string()).nullish().transform((v) => v ?? []),
    Tty: z.boolean().nullish().transform((v) => v ?? false),
  }),
  HostConfig: z.object({
    Memory: z.number().nullish(),
    NanoCpus: z.number().nullish(),
    Binds: z.array(z.string()).nullish(),
    PortBindings: z.record(z.string(), z.array(PortBindingSchema).nullable()).nullish(),
  }),
  /** Addresses for probes; empty strings (Podman) or absent networks (network "none") mean none. */
  NetworkSettings: z.object({
    IPAddress: z.string().nullish().transform((v) => v ?? ''),
    Networks: z.record(z.string(), z.object({ IPAddress: z.string().nullish().transform((v) => v ?? '') }).nullable())
      .nullish().transform((v) => v ?? {}),
  }).nullish(),
});
export type ContainerInspect = z.infer<typeof ContainerInspectSchema>;

export const ContainerSummarySchema = z.object({
  Id: z.string(),
  Names: z.array(z.string()).nullish().transform((v) => v ?? []),
  Image: z.string(),
  Labels: LabelsSchema,
  State: z.string(),
});
export type ContainerSummary = z.infer<typeof ContainerSummarySchema>;

export const IdResponseSchema = z.object({ Id: z.string() });
export const ExecInspectSchema = z.object({ Running: z.boolean(), ExitCode: z.number().int().nullable(), Pid: z.number().int().nullish() });
export const ErrorBodySchema = z.object({ message: z.string() });

// ---- request bodies -------------------------------------------------------------------------

export interface PortBinding { HostIp: string; HostPort: string }

export interface ContainerCreateBody {
  Image: string;
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
  Labels?: Record<string, string>;
  ExposedPorts?: Record<string, Record<string, never>>;
  HostConfig?: {
    Binds?: string[];
    PortBindings?: Record<string, PortBinding[]>;
    /** 'host' for a hostNetwork template; absent means the engine's default network. */
    NetworkMode?: 'host';
    Memory?: number;
    NanoCpus?: number;
    RestartPolicy?: { Name: 'no' | 'always' | 'on-failure' | 'unless-stopped'; MaximumRetryCount?: number };
  };
}
