/**
 * The workloads the edge benchmark places on its node, by runtime kind. Each App selects the
 * one benchmark node by label, so one App = one workload there. Process workloads sleep and
 * do nothing else, so what is measured is edgecore's supervision cost, not the workload's work.
 *
 * Containers: edgecore does not wire its container runtime yet; the plan says so and the
 * benchmark reports the kind as skipped. When it is wired, `containerTemplate` is the only
 * thing to fill in (an image that sleeps, imagePullPolicy Never/IfNotPresent with a local
 * archive so no registry is needed).
 */

export const BENCH_LABEL = 'bench.edgefleet.io/node';
export const CONTAINERS_NOT_WIRED = 'skipped: container runtime not wired into edgecore yet';

export type WorkloadKind = 'process' | 'container';

export interface KindPlan {
  kind: WorkloadKind;
  count: number;
  /** Why this kind is not measured (then `apps` is empty). */
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
  if (containers > 0) plans.push({ kind: 'container', count: containers, skipped: CONTAINERS_NOT_WIRED, appNames: [] });
  return plans;
}

/** The App body for one process workload; `revision` goes into the env so a PUT changes the spec. */
export function processApp(name: string, node: string, revision: number) {
  return {
    kind: 'App',
    metadata: { name },
    spec: {
      selector: { matchLabels: { [BENCH_LABEL]: node } },
      template: {
        runtime: 'process',
        command: '/bin/sleep',
        args: ['100000'],
        env: { BENCH_REVISION: String(revision) },
        restartPolicy: 'Always',
      },
    },
  };
}
