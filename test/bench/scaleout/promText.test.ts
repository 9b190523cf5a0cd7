import { describe, expect, it } from 'vitest';
import { parsePromText, promSum } from './promText.js';

describe('Prometheus text parsing (the benchmark reads replica and etcd /metrics)', () => {
  it('sums the samples of a metric over its label sets and skips comments', () => {
    const text = [
      '# HELP edgefleet_hub_frames_sent_total WebSocket frames sent to edges, by frame type.',
      '# TYPE edgefleet_hub_frames_sent_total counter',
      'edgefleet_hub_frames_sent_total{type="sync"} 10',
      'edgefleet_hub_frames_sent_total{type="pong"} 32',
      'edgefleet_hub_sessions 3334',
      'etcd_mvcc_put_total 1.5e+06',
      '',
    ].join('\n');
    const m = parsePromText(text);
    expect(promSum(m, 'edgefleet_hub_frames_sent_total')).toBe(42);
    expect(promSum(m, 'edgefleet_hub_sessions')).toBe(3334);
    expect(promSum(m, 'etcd_mvcc_put_total')).toBe(1_500_000);
    expect(promSum(m, 'edgefleet_replica_leader')).toBeNull();
  });

  it('reads a label value holding spaces and braces, and ignores a sample with no number', () => {
    const m = parsePromText('x{route="/a b}",method="GET"} 2\nx{route="c"} 3\ny NaNish\n');
    expect(promSum(m, 'x')).toBe(5);
    expect(promSum(m, 'y')).toBeNull();
  });
});
