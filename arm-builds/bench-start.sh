#!/usr/bin/env bash
# arm-builds/bench-start.sh [RUNS] [TARBALL]
#
# Cold start and RSS of edgecore bundled (the x64 artefact's lib/edgecore.mjs on its own
# node/bin/node) against unbundled (tsc's dist/edgecore/main.js on the host node), both with
# --lite-mode as the binaries run: for each run a fresh data dir, no cloud (its URL is a closed
# loopback port), time from spawn to the "edgecore ready" log line, RSS then and 10 s later.
# Prints one line per run and the medians. For docs/benchmarks.md; not a test.
set -uo pipefail
runs=${1:-7}
repo=$(cd "$(dirname "$0")/.." && pwd)
tarball=${2:-$(ls "$repo"/dist-artefacts/"$(jq -r .version "$repo/package.json")"/edgefleet-edge-*-linux-x64.tar.gz | head -n 1)}
tmp=$(mktemp -d /tmp/ef-bench-XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
tar -xzf "$tarball" -C "$tmp"
home=$(ls -d "$tmp"/edgefleet-edge-*/)

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

measure() {
  local label=$1; shift
  : > "$tmp/$label.ms"; : > "$tmp/$label.rss"; : > "$tmp/$label.idle"
  for i in $(seq "$runs"); do
    rm -rf "$tmp/data"
    local start; start=$(date +%s%N)
    "$@" --node bench --cloud-url http://127.0.0.1:9 --data-dir "$tmp/data" --status-port 0 --mqtt-port 0 --join-token x.y > "$tmp/log" 2>&1 &
    pid=$!
    until grep -q '"msg":"edgecore ready"' "$tmp/log"; do
      kill -0 "$pid" 2>/dev/null || { echo "$label: edgecore exited: $(tail -n 3 "$tmp/log")" >&2; exit 1; }
      sleep 0.01
    done
    local ms=$(( ($(date +%s%N) - start) / 1000000 ))
    local rss; rss=$(rss_kib "$pid")
    sleep 10
    local idle; idle=$(rss_kib "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null; pid=
    echo "$label run $i: ready ${ms} ms, RSS at ready $(( rss / 1024 )) MiB, after 10 s $(( idle / 1024 )) MiB"
    echo "$ms" >> "$tmp/$label.ms"; echo "$rss" >> "$tmp/$label.rss"; echo "$idle" >> "$tmp/$label.idle"
  done
  echo "$label median of $runs: ready $(median < "$tmp/$label.ms") ms, RSS at ready $(( $(median < "$tmp/$label.rss") / 1024 )) MiB, after 10 s $(( $(median < "$tmp/$label.idle") / 1024 )) MiB"
}

measure unbundled node --lite-mode "$repo/dist/edgecore/main.js"
measure bundled "$home/node/bin/node" --lite-mode "$home/lib/edgecore.mjs"
