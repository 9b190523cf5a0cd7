import { parseJoinToken } from '../protocol/index.js';
import { UsageError } from './parse.js';

/**
 * The one line a field engineer pastes on a new node (docs/install.md, "Join"). cloudcore's CA
 * is its own, so a plain `curl https://…` cannot verify it and `-k` would trust anyone: the line
 * fetches the CA bundle unverified, checks it against the pin the EF1 token carries (sha256sum),
 * and only then fetches the installer with `--cacert`; the installer downloads everything else
 * with that bundle and checks the pin again itself. Over plain HTTP, or with a token that pins
 * nothing (an operator certificate from a public CA), it is the bare `curl … | sh`.
 */
const CLOUD_URL = /^https?:\/\/[A-Za-z0-9.-]+(?::\d{1,5})?$|^https?:\/\/\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;
const NODE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function joinCommand(cloudUrl: string, node: string, token: string): string {
  const url = cloudUrl.replace(/\/+$/, '');
  // Each part lands in a shell line unquoted: only characters that mean nothing to a shell pass.
  if (!CLOUD_URL.test(url)) throw new UsageError(`cloud URL "${cloudUrl}" is not scheme://host[:port] (no path): pass --cloud-url`);
  if (!NODE.test(node)) throw new UsageError(`node name "${node}" cannot go in a join command`);
  const parsed = parseJoinToken(token);
  if (!parsed) throw new UsageError('the cloud answered a join token in no known format');
  const install = `sh -s -- --token ${token} --node ${node}`;
  if (parsed.pin === null || url.startsWith('http://')) return `curl -fsSL ${url}/install.sh | ${install}`;
  // A subshell, so the line's exit status is the installer's and the trap removes the temp dir whatever happens.
  return `(d=$(mktemp -d) && trap 'rm -rf "$d"' EXIT && curl -fsSk ${url}/hub/v1/ca -o "$d/ca.pem" && echo "${parsed.pin}  $d/ca.pem" | sha256sum -c && `
    + `curl -fsSL --cacert "$d/ca.pem" ${url}/install.sh | ${install} --ca-file "$d/ca.pem")`;
}
