import { join } from 'node:path';
import type { Logger } from 'pino';
import type { CloudSettings } from './config.js';
import type { SecretSealer } from './store/secretSealing.js';
import { checkEtcdCluster } from './store/etcd/etcdCluster.js';
import { openEtcdStore, type EtcdStore } from './store/etcd/etcdStore.js';
import { openSqliteStore } from './store/sqliteStore.js';
import type { Store } from './store/store.js';

/** The store cloudcore was configured with; `etcd` is set when it is shared with other replicas. */
export interface StoreBackend {
  store: Store;
  etcd: EtcdStore | undefined;
}

/**
 * Opens the store `--store` names: the SQLite file in the data dir (one cloudcore), or the etcd
 * cluster of `--etcd-endpoints` (replicas; docs/scale-out.md), checked first to be reachable and
 * one cluster, so a wrong endpoint stops the start with the setting named instead of 503s later.
 */
export async function openStoreBackend(settings: CloudSettings, sealer: SecretSealer, log: Logger): Promise<StoreBackend> {
  if (settings.store === 'sqlite') {
    const store = await openSqliteStore({
      path: join(settings.dataDir, 'cloudcore.db'), maxEvents: settings.maxEvents, maxEventObjectChanges: settings.maxEventObjectChanges, sealer,
    });
    if (store.resealed.objects + store.resealed.events > 0) {
      log.info({ ...store.resealed, key: sealer.primaryKeyId }, 'sealed Secret values under the secret key file\'s first key');
    }
    return { store, etcd: undefined };
  }
  const tls = {
    ...(settings.etcdCa !== undefined ? { caFile: settings.etcdCa } : {}),
    ...(settings.etcdCert !== undefined ? { certFile: settings.etcdCert } : {}),
    ...(settings.etcdKey !== undefined ? { keyFile: settings.etcdKey } : {}),
  };
  const callTimeoutMs = Math.round(settings.etcdTimeoutSeconds * 1000);
  const cluster = await checkEtcdCluster({ endpoints: settings.etcdEndpoints, tls, callTimeoutMs });
  log.info({ endpoints: settings.etcdEndpoints, ...cluster }, 'etcd cluster reachable');
  const store = await openEtcdStore({
    endpoints: settings.etcdEndpoints, prefix: settings.etcdPrefix, sealer, tls, callTimeoutMs, maxEvents: settings.maxEvents,
  });
  return { store, etcd: store };
}
