import type { EdgeEvent, WorkloadStatus } from '../../protocol/index.js';

/**
 * The event the edge reports upstream when a workload changes state (undefined for states
 * that are not news, like Pending). Status itself coalesces per workload; these keep the
 * history an operator sees in `edgectl get events`.
 */
export function transitionEvent(name: string, s: WorkloadStatus): EdgeEvent | undefined {
  const time = s.observedAt;
  switch (s.state) {
    case 'Running': return { type: 'Normal', reason: 'Started', message: `started ${name} (pid ${s.pid ?? '?'}, generation ${s.generation})`, workload: name, time };
    case 'Exited': return { type: 'Normal', reason: 'Exited', message: `${name} exited with code ${s.exitCode ?? '?'}${s.signal ? ` (signal ${s.signal})` : ''}`, workload: name, time };
    case 'CrashLoop': return { type: 'Warning', reason: 'BackOff', message: `${name} keeps failing (${s.restarts} restarts); backing off`, workload: name, time };
    case 'Failed': return { type: 'Warning', reason: 'Failed', message: `${name} failed: ${s.lastError ?? 'unknown error'}`, workload: name, time };
    default: return undefined;
  }
}
