import { z } from 'zod';
import { DEFAULT_LEADER_LEASE_SECONDS } from './leaderDecisions.js';
import { DEFAULT_REPLICA_LEASE_SECONDS } from './replicaLease.js';

/**
 * The cluster's two settings, as fields for CloudSettingsSchema (cloudcore/config.ts spreads them
 * in; flag, env EF_CLOUD_<NAME> and YAML come from there like every setting). Whole seconds: etcd
 * grants leases in seconds. At least 2: a leader checks for stalls of TTL/3, and keepalives every
 * TTL/3 need room for an answer within the TTL.
 */
export const clusterSettingsFields = {
  /** TTL of a replica's lease: how long a dead replica's registry entry and edge sessions outlive it. */
  replicaLeaseSeconds: z.coerce.number().int().min(2).max(300).default(DEFAULT_REPLICA_LEASE_SECONDS),
  /** TTL of the leader's lease: how long a dead leader blocks failover of the singletons. */
  leaderLeaseSeconds: z.coerce.number().int().min(2).max(60).default(DEFAULT_LEADER_LEASE_SECONDS),
};

/** commander options for cloudcore/main.ts: [flags, description]. */
export const clusterSettingsOptions: ReadonlyArray<readonly [string, string]> = [
  ['--replica-lease-seconds <n>', `TTL of this replica's etcd lease: a dead replica's sessions are released after it (default ${DEFAULT_REPLICA_LEASE_SECONDS}; --store etcd only)`],
  ['--leader-lease-seconds <n>', `TTL of the leader's etcd lease: failover of the controllers takes about this long (default ${DEFAULT_LEADER_LEASE_SECONDS}; --store etcd only)`],
];
