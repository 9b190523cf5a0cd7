import type { EtcdCluster } from '../../helpers/etcdCluster.js';
import { procDelta, round, sampleProcess, type ProcDelta, type ProcSample } from '../procStats.js';
import { promSum, scrapeProm } from './promText.js';

/**
 * What etcd did during a step: the write rate it reached (from each member's /metrics) and each
 * member's RSS and CPU (from /proc). Every member applies every committed write, so rates come
 * from one member (the one that applied most), not the sum.
 */

interface MemberCounters {
  puts: number;
  deletes: number;
  txns: number;
  proposalsCommitted: number;
  dbBytes: number;
  keys: number;
}

export interface EtcdSample {
  at: number;
  members: { name: string; proc: ProcSample | null; counters: MemberCounters | null }[];
}

export interface EtcdStepFigures {
  seconds: number;
  /** Per second over the step, from the member that applied most. */
  putsPerSecond: number;
  deletesPerSecond: number;
  txnsPerSecond: number;
  proposalsCommittedPerSecond: number;
  /** Totals over the step. */
  puts: number;
  proposalsCommitted: number;
  dbMiBAfter: number;
  keysAfter: number;
  members: ({ name: string } & ProcDelta)[];
}

async function counters(clientUrl: string): Promise<MemberCounters | null> {
  try {
    const m = await scrapeProm(`${clientUrl}/metrics`, {}, 5_000);
    const get = (name: string, fallback?: string) => promSum(m, name) ?? (fallback ? promSum(m, fallback) : null) ?? 0;
    return {
      puts: get('etcd_mvcc_put_total', 'etcd_debugging_mvcc_put_total'),
      deletes: get('etcd_mvcc_delete_total', 'etcd_debugging_mvcc_delete_total'),
      txns: get('etcd_mvcc_txn_total', 'etcd_debugging_mvcc_txn_total'),
      proposalsCommitted: get('etcd_server_proposals_committed_total'),
      dbBytes: get('etcd_mvcc_db_total_size_in_bytes'),
      keys: get('etcd_debugging_mvcc_keys_total'),
    };
  } catch {
    // a member that is down (killed on purpose) or too busy to answer within the bound
    return null;
  }
}

export async function sampleEtcd(cluster: EtcdCluster, clockTicks: number): Promise<EtcdSample> {
  const members = await Promise.all(cluster.members.map(async (m) => {
    const pid = m.process?.pid;
    let proc: ProcSample | null = null;
    try {
      proc = pid === undefined ? null : sampleProcess(pid, clockTicks);
    } catch {
      proc = null;
    }
    return { name: m.name, proc, counters: await counters(m.clientUrl) };
  }));
  return { at: Date.now(), members };
}

export function etcdStep(before: EtcdSample, after: EtcdSample): EtcdStepFigures {
  const seconds = Math.max((after.at - before.at) / 1000, 1e-3);
  let best: { d: MemberCounters; after: MemberCounters } | undefined;
  before.members.forEach((m, i) => {
    const a = after.members[i]?.counters;
    if (!m.counters || !a) return;
    const d: MemberCounters = {
      puts: a.puts - m.counters.puts, deletes: a.deletes - m.counters.deletes, txns: a.txns - m.counters.txns,
      proposalsCommitted: a.proposalsCommitted - m.counters.proposalsCommitted, dbBytes: a.dbBytes, keys: a.keys,
    };
    if (!best || d.proposalsCommitted > best.d.proposalsCommitted) best = { d, after: a };
  });
  const d = best?.d;
  const rate = (x: number | undefined) => round((x ?? 0) / seconds, 1);
  return {
    seconds: round(seconds, 1),
    putsPerSecond: rate(d?.puts),
    deletesPerSecond: rate(d?.deletes),
    txnsPerSecond: rate(d?.txns),
    proposalsCommittedPerSecond: rate(d?.proposalsCommitted),
    puts: d?.puts ?? 0,
    proposalsCommitted: d?.proposalsCommitted ?? 0,
    dbMiBAfter: round((best?.after.dbBytes ?? 0) / 2 ** 20, 1),
    keysAfter: best?.after.keys ?? 0,
    members: before.members.flatMap((m, i) => {
      const a = after.members[i]?.proc;
      return m.proc && a ? [{ name: m.name, ...procDelta(m.proc, a) }] : [];
    }),
  };
}
