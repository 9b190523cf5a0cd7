/**
 * The cluster side of a cloudcore replica on etcd (`--store etcd`): each module takes the etcd
 * store's client and key prefix. Keys (relative to the store prefix `<p>`):
 * `<p>cluster/leader`, `<p>cluster/replicas/<id>`, `<p>cluster/sessions/<node>`, `<p>cluster/secrets/<name>`.
 */
export { ClusterSecrets, SECRETS_PREFIX, type ClusterSecretsOptions } from './clusterSecrets.js';
export { KeptLease, type KeptLeaseOptions } from './keptLease.js';
export { DEFAULT_LEADER_LEASE_SECONDS, LEADER_KEY, leaderGuard } from './leaderDecisions.js';
export { LeaderElection, type LeaderElectionOptions } from './leaderElection.js';
export { PrefixView, type PrefixViewOptions } from './prefixView.js';
export { DEFAULT_REPLICA_LEASE_SECONDS, ReplicaLease, type ReplicaLeaseOptions } from './replicaLease.js';
export { parseReplicaId, REPLICAS_PREFIX, ReplicaRegistry, replicaInfoSchema, type ReplicaInfo, type ReplicaRegistryOptions } from './replicaRegistry.js';
export { absentSessionGuard, SESSIONS_PREFIX, type SessionEntry } from './sessionDecisions.js';
export { SessionRegistry, type SessionRegistryOptions, type TakenOverHandler } from './sessionRegistry.js';
