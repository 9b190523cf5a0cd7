import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { commandLineWithoutJoinToken } from '../../edgecore/config.js';
import { api, Fleet, runToEnd } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Attack: `--join-token` on the command line stayed in /proc/<pid>/cmdline, where any local user
 * (or `ps`) read it for as long as edgecore ran. Now it is hidden from the process list as the
 * agent starts, with a warning naming the safe forms; a token file joins without ever being there.
 */

describe('the join token and the process list', () => {
  let fleet: Fleet | undefined;
  afterEach(async () => { await fleet?.cleanup(); fleet = undefined; });

  it('commandLineWithoutJoinToken hides both spellings and leaves a command line without one alone', () => {
    expect(commandLineWithoutJoinToken(['node', 'edgecore', '--node', 'a', '--join-token', 'abc.def'])).toBe('node edgecore --node a --join-token (hidden)');
    expect(commandLineWithoutJoinToken(['node', 'edgecore', '--join-token=abc.def', '--node', 'a'])).toBe('node edgecore --join-token=(hidden) --node a');
    expect(commandLineWithoutJoinToken(['node', 'edgecore', '--join-token-file', '/x'])).toBeNull();
  });

  it('a token given as a flag leaves /proc/<pid>/cmdline once edgecore runs, and the log says how to avoid it', async () => {
    const f = fleet = new Fleet();
    const cloud = await f.startCloud();
    const token = await api(cloud).token('edge-1');
    const edge = await f.startEdge({ node: 'edge-1', cloudUrl: cloud.url, joinToken: token });
    const secret = token.split('.')[1]!;
    const cmdline = readFileSync(`/proc/${edge.proc.pid}/cmdline`, 'latin1');
    expect(cmdline).toContain('--join-token (hidden)');
    expect(cmdline).not.toContain(secret);
    expect(edge.proc.lines.some((l) => l.level === 40 && String(l.msg).startsWith('the join token was given on the command line'))).toBe(true);
    await waitFor('edge-1 joined', async () => (await api(cloud).call<{ status: { phase: string } }>('GET', '/nodes/edge-1')).body?.status?.phase === 'Ready' || undefined);
  });

  it('--join-token-file joins with the file\'s first line; an empty or missing file is refused by name', async () => {
    const f = fleet = new Fleet();
    const cloud = await f.startCloud();
    const tokenFile = join(f.tempDir(), 'token');
    writeFileSync(tokenFile, `${await api(cloud).token('edge-2')}\n`, { mode: 0o600 });
    await f.startEdge({ node: 'edge-2', cloudUrl: cloud.url, extra: ['--join-token-file', tokenFile] });
    await waitFor('edge-2 joined', async () => (await api(cloud).call<{ status: { phase: string } }>('GET', '/nodes/edge-2')).body?.status?.phase === 'Ready' || undefined);

    writeFileSync(tokenFile, '\n');
    const empty = await runToEnd('edgecore', ['--node', 'edge-3', '--cloud-url', cloud.url, '--join-token-file', tokenFile, '--data-dir', f.tempDir()]);
    expect(empty.code).toBe(2);
    expect(empty.err).toContain(`invalid setting "joinTokenFile": ${tokenFile} is empty`);
    const both = await runToEnd('edgecore', ['--node', 'edge-3', '--cloud-url', cloud.url, '--join-token-file', tokenFile, '--join-token', 'a.b', '--data-dir', f.tempDir()]);
    expect(both.code).toBe(2);
    expect(both.err).toContain('give the join token once');
  });
});
