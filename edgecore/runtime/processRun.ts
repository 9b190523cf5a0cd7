import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { ProcessTemplate } from '../../protocol/index.js';
import { makeOutputFifo } from './processHandover.js';
import { directoryProblem } from './processSupport.js';
import { findExecutable, privilegeDropArgs, runAsOf } from './workloadUser.js';
import { LineSplitter } from './cappedLog.js';
import type { RunProbes } from './probes/runProbes.js';
import type { RunOutcome } from './restartPolicy.js';

/** One start of a workload's process. */
export interface Run {
  pid: number | null;
  startTicks: number | null;
  startedMs: number;
  ended: boolean;
  /** Set when we stop it on purpose: its exit is then not a crash and never restarts. */
  stopping: boolean;
  outcome: RunOutcome | null;
  exited: Promise<void>;
  markExited: () => void;
  probes: RunProbes | null;
  /** Set when a failed liveness probe made us terminate it: the reason of the last check. */
  livenessFailure: string | null;
  /** edgecore's reading end of the run's output FIFO. */
  reader: Socket | null;
  /** An adopted run (not our child): its pid is polled for the exit. */
  exitPoll: NodeJS.Timeout | null;
}

/** A run not started yet (pid null) or adopted (its pid and start ticks known). */
export function newRun(pid: number | null, startTicks: number | null, startedMs: number): Run {
  let markExited = (): void => {};
  const exited = new Promise<void>((resolve) => { markExited = resolve; });
  return {
    pid, startTicks, startedMs, ended: false, stopping: false, outcome: null, exited, markExited,
    probes: null, livenessFailure: null, reader: null, exitPoll: null,
  };
}

/**
 * Reads a run's output as lines. stdout and stderr share the FIFO: lines interleave in arrival
 * order, as the log keeps them (a write up to PIPE_BUF, 4 KiB, is never split by another).
 */
export function readLines(stream: Socket, onLines: (lines: string[]) => void, onError: (err: Error) => void): void {
  const splitter = new LineSplitter();
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => onLines(splitter.push(chunk)));
  stream.on('end', () => onLines(splitter.flush()));
  stream.on('error', onError);
}

/**
 * Spawns one run of `template` (argv, never a shell string) in its own session and process
 * group, as its user, its stdout and stderr into a fresh FIFO at `fifoPath`. Throws what stops
 * it before the spawn (working dir, user, command) in words the status can carry.
 */
export function spawnWorkload(template: ProcessTemplate, env: Record<string, string>, fifoPath: string): { child: ChildProcess; reader: Socket } {
  const runAs = runAsOf(template);
  const cwdProblem = template.workingDir === undefined ? null : directoryProblem(template.workingDir);
  if (cwdProblem !== null) throw new Error(cwdProblem);
  const prefix = runAs ? privilegeDropArgs(runAs) : [];
  if (runAs && process.getuid?.() !== 0) throw new Error(`runAsUser ${runAs.uid}: edgecore is not root and cannot switch users`);
  if (runAs && findExecutable(template.command, env.PATH, template.workingDir) === null) {
    // What spawn says without the setpriv in front (which would only exit non-zero).
    throw new Error(`command not found: ${JSON.stringify(template.command)} (not an executable file in PATH ${env.PATH ?? ''})`);
  }
  const [file, ...args] = [...prefix, template.command, ...template.args];
  const fifo = makeOutputFifo(fifoPath);
  try {
    return { child: spawn(file!, args, { cwd: template.workingDir, env, detached: true, stdio: ['ignore', fifo.childFd, fifo.childFd] }), reader: fifo.reader };
  } catch (err) {
    fifo.reader.destroy();
    throw err;
  } finally {
    // The child has its own copy: once it (and all it forked) closed it, the reader sees the end.
    closeSync(fifo.childFd);
  }
}
