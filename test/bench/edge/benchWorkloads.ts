/**
 * The workloads the edge benchmark places on its node, by runtime kind. Each App selects the
 * one benchmark node by label, so one App = one workload there. Process workloads sleep and
 * do nothing else, so what is measured is edgecore's supervision cost, not the workload's work.
 *
 * Container workloads run on a node of their own (an edgecore started with a throw-away Podman
 * engine), so the process phases are not disturbed; their image is built locally from busybox
 * (imagePullPolicy Never: no registry is needed).
 */

export const BENCH_LABEL = 'bench.edgefleet.io/node';
/** Built by `scripts/test-engine.sh image DIR REF` from the host's busybox. */
export const CONTAINER_IMAGE = 'localhost/edgefleet-test:1';
/** PID 1 in a container has no default signal handlers: trap TERM so a stop is immediate. */
export const CONTAINER_COMMAND = ['/bin/sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"];

export type WorkloadKind = 'process' | 'container';

export interface KindPlan {
  kind: WorkloadKind;
  count: number;
  /** Why this kind is not measured (set by the run, e.g. when no container engine can start). */
  skipped: string | null;
  appNames: string[];
}

export function appName(kind: WorkloadKind, index: number): string {
  return `bench-${kind === 'process' ? 'proc' : 'ctr'}-${String(index).padStart(2, '0')}`;
}

export function planKinds(processes: number, containers: number): KindPlan[] {
  const plans: KindPlan[] = [{
    kind: 'process', count: processes, skipped: null,
    appNames: Array.from({ length: processes }, (_, i) => appName('process', i)),
  }];
  if (containers > 0) {
    plans.push({ kind: 'container', count: containers, skipped: null, appNames: Array.from({ length: containers }, (_, i) => appName('container', i)) });
  }
  return plans;
}

/** An App bound to the bench node; `revision` goes into the env so a PUT changes the spec. */
function benchApp(name: string, node: string, revision: number, template: Record<string, unknown>) {
  return {
    kind: 'App',
    metadata: { name },
    spec: {
      selector: { matchLabels: { [BENCH_LABEL]: node } },
      template: { ...template, env: { BENCH_REVISION: String(revision) }, restartPolicy: 'Always' },
    },
  };
}

/** The App body for one process workload. */
export function processApp(name: string, node: string, revision: number) {
  return benchApp(name, node, revision, { runtime: 'process', command: '/bin/sleep', args: ['100000'] });
}

/** The App body for one container workload. */
export function containerApp(name: string, node: string, revision: number) {
  return benchApp(name, node, revision, { runtime: 'container', image: CONTAINER_IMAGE, imagePullPolicy: 'Never', command: CONTAINER_COMMAND });
}
