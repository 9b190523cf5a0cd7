#!/usr/bin/env bash
# arm-builds/verify.sh ARCH [RELEASE_DIR]
#
# Runs one edge artefact (x64 | arm64 | armv7) against a real x64 cloudcore from this checkout's
# dist/ on loopback, under qemu-user-static for ARM (called directly: binfmt_misc is usually not
# registrable in a container), and prints one line per check:
#   signature   SHA256SUMS.sig verifies under release-key.pub; the tarball matches SHA256SUMS
#   layout      VERSION/ARCH, runtime, bundles, addon for ARCH, launchers
#   join        a pinned join token over HTTPS; the node links (time from start to linked)
#   page        edgecore's status page (static files shipped beside the bundle) is served
#   os/arch     the cloud's Node reports linux and ARCH's Node.js name (x64 | arm64 | arm)
#   workload    an App applied with the artefact's edgectl runs as a process on the node
#   broker      mosquitto_pub with the device's credential reaches the cloud twin
#   mapper      the artefact's mapper (virtual) gets its devices from edgecore and connects one
#   restart     cloud stopped, edgecore restarted: workload and device come back from the
#               node's SQLite store alone
#   relink      cloudcore back: the node relinks with its own credential (the token is spent)
# Exit 0 only if every check passed. Needs: node (host), curl, jq, openssl, sha256sum, tar,
# mosquitto_pub, and for ARM qemu-<arch>-static with the cross toolchain's sysroot (libc).
# Env: VERIFY_START_TIMEOUT (s, default 180: an emulated cold start), VERIFY_KEEP=1 keeps the
# temp dir. Run `npm run build` first (cloudcore comes from dist/).
set -uo pipefail

arch=${1:-}
repo=$(cd "$(dirname "$0")/.." && pwd)
release=${2:-$repo/dist-artefacts/$(jq -r .version "$repo/package.json")}
start_timeout=${VERIFY_START_TIMEOUT:-180}
case "$arch" in
  x64) node_arch=x64; qemu=() ;;
  arm64) node_arch=arm64; qemu=(qemu-aarch64-static -L /usr/aarch64-linux-gnu) ;;
  armv7) node_arch=arm; qemu=(qemu-arm-static -L /usr/arm-linux-gnueabihf) ;;
  *) echo "usage: $0 x64|arm64|armv7 [RELEASE_DIR]" >&2; exit 2 ;;
esac

failed=0
pass() { printf 'PASS %-9s %s\n' "$1" "$2"; }
fail() { printf 'FAIL %-9s %s\n' "$1" "$2"; failed=1; }
die() { fail "$1" "$2"; echo "verify $arch: FAILED" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die setup "$1 not found${2:+ ($2)}"; }
for tool in node curl jq openssl sha256sum tar mosquitto_pub; do need "$tool"; done
[ ${#qemu[@]} -eq 0 ] || need "${qemu[0]}" "Debian qemu-user-static"
[ ${#qemu[@]} -eq 0 ] || [ -d "${qemu[2]}/lib" ] || die setup "${qemu[2]} missing (Debian's cross toolchain libc)"
[ -f "$repo/dist/cloudcore/main.js" ] || die setup "no $repo/dist/cloudcore/main.js: run npm run build"

# The release's version is the one in its tarball's name (a test builds e.g. 9.9.9-verify).
set -- "$release"/edgefleet-edge-*-linux-"$arch".tar.gz
[ $# -eq 1 ] && [ -f "$1" ] || die setup "not one edgefleet-edge-*-linux-$arch.tar.gz in $release: run npm run build:edge-artefacts"
tarball=$1
base=$(basename "$tarball" .tar.gz)
version=${base#edgefleet-edge-}
version=${version%-linux-"$arch"}

tmp=$(mktemp -d /tmp/ef-verify-XXXXXX)
# Workloads run as their own unprivileged user when edgecore is root: they must pass through.
chmod 0711 "$tmp"
pids=()
workload_pid=
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  # The workload outlives edgecore on purpose (keepWorkloadsOnExit): end its process group.
  [ -n "$workload_pid" ] && kill -9 -- "-$workload_pid" 2>/dev/null
  [ "${VERIFY_KEEP:-0}" = 1 ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Polls `$@` every 0.5 s until it succeeds or $timeout seconds pass.
wait_for() {
  local timeout=$1; shift
  local end=$(( $(date +%s) + timeout ))
  until "$@"; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.5
  done
}
# First pino line of a log whose msg is $2, its field $3 (empty until the line is there). Lines
# that are not JSON (V8's notice about --lite-mode) are skipped.
log_field() { jq -rR --arg m "$2" "fromjson? | select(.msg? == \$m) | .$3 // empty" "$1" 2>/dev/null | head -n 1; }
has_log() { [ -n "$(log_field "$1" "$2" msg)" ]; }
now_ms() { date +%s%3N; }

# --- signature and checksum, as an installer checks them -----------------------------------
if base64 -d "$release/SHA256SUMS.sig" > "$tmp/sums.sig" 2>/dev/null \
  && openssl pkeyutl -verify -pubin -inkey "$release/release-key.pub" -rawin -in "$release/SHA256SUMS" -sigfile "$tmp/sums.sig" >/dev/null 2>&1; then
  line=$(grep -E "^[0-9a-f]{64}  $base\.tar\.gz\$" "$release/SHA256SUMS")
  if [ -n "$line" ] && (cd "$release" && printf '%s\n' "$line" | sha256sum -c --status -); then
    pass signature "SHA256SUMS.sig verifies (Ed25519, release-key.pub); $base.tar.gz matches SHA256SUMS"
  else
    die signature "$base.tar.gz does not match SHA256SUMS"
  fi
else
  die signature "SHA256SUMS.sig does not verify under $release/release-key.pub"
fi

# --- layout ----------------------------------------------------------------------------------
tar -xzf "$tarball" -C "$tmp" || die layout "cannot extract $tarball"
home=$tmp/$base
addon=$home/lib/node_modules/better-sqlite3/build/Release/better_sqlite3.node
case "$arch" in x64) elf='x86-64' ;; arm64) elf='aarch64' ;; armv7) elf='ARM' ;; esac
machine=$(od -An -tu2 -j18 -N2 "$addon" 2>/dev/null | tr -d ' ')
case "$arch:$machine" in x64:62|arm64:183|armv7:40) elf_ok=1 ;; *) elf_ok=0 ;; esac
if [ "$(cat "$home/VERSION" 2>/dev/null)" = "$version" ] && [ "$(cat "$home/ARCH" 2>/dev/null)" = "$arch" ] \
  && [ -x "$home/node/bin/node" ] && [ -f "$home/lib/edgecore.mjs" ] && [ -f "$home/lib/mapper.mjs" ] && [ -f "$home/lib/edgectl.mjs" ] \
  && [ -x "$home/bin/edgecore" ] && [ -x "$home/bin/edgectl" ] && [ -x "$home/bin/mapper" ] && [ -f "$home/share/release-key.pub" ] && [ "$elf_ok" = 1 ]; then
  pass layout "VERSION $version, ARCH $arch, node/bin/node, lib/{edgecore,edgectl,mapper}.mjs, bin/ launchers, better_sqlite3.node is $elf"
else
  die layout "$base is incomplete or not for $arch (addon e_machine ${machine:-none})"
fi

# Runs a binary of the artefact. Natively through its launcher, also for ARM where binfmt_misc
# has a qemu handler for it (a workstation with qemu-user-static's binfmt entries); otherwise the
# same command line the launcher execs, under qemu called directly (without binfmt_misc the
# kernel cannot exec an ARM ELF, so the launcher's exec of node/bin/node would fail).
binfmt=
case "$arch" in arm64) binfmt=qemu-aarch64 ;; armv7) binfmt=qemu-arm ;; esac
if [ -n "$binfmt" ] && grep -qx enabled "/proc/sys/fs/binfmt_misc/$binfmt" 2>/dev/null; then
  # The handler finds the ARM loader and libc through QEMU_LD_PREFIX (what -L does directly).
  export QEMU_LD_PREFIX=${qemu[2]}
  qemu=()
  echo "binfmt_misc has $binfmt: the ARM binaries run through their launchers"
fi
bin_argv() {
  local name=$1
  if [ ${#qemu[@]} -eq 0 ]; then
    argv=("$home/bin/$name")
  else
    local flags=()
    [ "$name" = edgecore ] && flags=(--lite-mode)
    argv=("${qemu[@]}" "$home/node/bin/node" "${flags[@]}" "$home/lib/$name.mjs")
  fi
}
bin_argv edgectl
ectl_version=$("${argv[@]}" --version 2>&1) || die layout "edgectl --version failed: $ectl_version"
pass version "edgectl --version: $ectl_version"

# --- a real cloudcore (x64, HTTPS with its own CA) ---------------------------------------------
start_cloud() {
  node "$repo/dist/cloudcore/main.js" --data-dir "$tmp/cloud" --host 127.0.0.1 --port "${cloud_port:-0}" --offline-after-seconds 5 > "$tmp/cloud.log" 2>&1 &
  cloud_pid=$!
  pids+=("$cloud_pid")
  wait_for 30 has_log "$tmp/cloud.log" 'cloudcore ready' || die cloud "cloudcore did not start: $(tail -n 5 "$tmp/cloud.log")"
}
start_cloud
cloud_url=$(log_field "$tmp/cloud.log" 'cloudcore ready' url)
cloud_port=${cloud_url##*:}
admin=$(cat "$tmp/cloud/admin.token")
api() {
  local method=$1 path=$2 body=${3:-}
  if [ -n "$body" ]; then
    curl -sS --cacert "$tmp/cloud/pki/ca.crt" -H "authorization: Bearer $admin" -H 'content-type: application/json' -X "$method" --data "$body" "$cloud_url/api/v1$path"
  else
    curl -sS --cacert "$tmp/cloud/pki/ca.crt" -H "authorization: Bearer $admin" -X "$method" "$cloud_url/api/v1$path"
  fi
}
node_name=verify-$arch
token=$(api POST /tokens "{\"node\":\"$node_name\"}" | jq -r '.token // empty')
case "$token" in EF1-*) ;; *) die join "no pinned join token from $cloud_url" ;; esac

# --- join: settings through a YAML --config file, as an installed node has them --------------------
mkdir -p "$tmp/etc" "$tmp/data" "$tmp/share"
chmod 1777 "$tmp/share"
( umask 077; printf '%s\n' "$token" > "$tmp/etc/join-token" )
cat > "$tmp/etc/edgecore.yaml" <<EOF
node: $node_name
cloudUrl: $cloud_url
joinTokenFile: $tmp/etc/join-token
dataDir: $tmp/data
statusPort: 0
mqttPort: 0
heartbeatSeconds: 2
keepWorkloadsOnExit: true
EOF
edge_status() { curl -sS --max-time 5 "$status_url/status"; }
linked() { [ "$(edge_status | jq -r '.link.state' 2>/dev/null)" = connected ]; }
start_edge() {
  local log=$1
  bin_argv edgecore
  started_ms=$(now_ms)
  "${argv[@]}" --config "$tmp/etc/edgecore.yaml" > "$log" 2>&1 &
  edge_pid=$!
  pids+=("$edge_pid")
  wait_for "$start_timeout" has_log "$log" 'edgecore ready' || die "$2" "edgecore did not get ready in ${start_timeout} s: $(tail -n 5 "$log")"
  ready_ms=$(now_ms)
  status_url=$(log_field "$log" 'edgecore ready' statusUrl)
  mqtt_url=$(log_field "$log" 'edgecore ready' mqttUrl)
}
start_edge "$tmp/edge.log" join
if wait_for "$start_timeout" linked; then
  linked_ms=$(now_ms)
  pass join "pinned token over HTTPS; ready $(( (ready_ms - started_ms) ))ms, linked $(( (linked_ms - started_ms) ))ms after start"
  echo "metric start_to_ready_ms=$(( ready_ms - started_ms )) start_to_linked_ms=$(( linked_ms - started_ms ))"
else
  die join "not linked: $(edge_status | jq -c .link)"
fi

# The status page's static files ship in lib/page and are found by the bundle. The page is read
# whole before grep looks at it: `curl | grep -q` under pipefail fails whenever grep has matched
# and exited while curl still writes (curl: (23) Failed writing body), seen on a fast machine.
page=$(curl -sS --max-time 5 "$status_url/")
if grep -q '<title>edgecore status</title>' <<<"$page" && curl -sSf --max-time 5 -o /dev/null "$status_url/assets/status.js"; then
  pass page "status page and its script served at $status_url/"
else
  fail page "status page not served at $status_url/"
fi

node_json=$(api GET "/nodes/$node_name")
agent=$(printf '%s' "$node_json" | jq -r '.status.agent | "\(.os)/\(.arch) \(.version)"')
if [ "$agent" = "linux/$node_arch $version" ]; then
  pass os/arch "cloud's Node $node_name: agent $agent"
else
  fail os/arch "cloud's Node $node_name: agent $agent, expected linux/$node_arch $version"
fi

# --- a process workload from the cloud -------------------------------------------------------------
marker=$tmp/share/marker
app=$(jq -nc --arg m "$marker" '{kind:"App",metadata:{name:"verify-app"},spec:{selector:{},template:{runtime:"process",command:"/bin/sh",args:["-c","echo started >> \"$0\"; exec sleep 600",$m],restartPolicy:"Always"}}}')
printf '%s\n' "$app" > "$tmp/app.json"
# Applied with the artefact's own edgectl (its bundle, under emulation for ARM); the token goes
# by env, not argv.
bin_argv edgectl
if ! applied=$(EF_TOKEN=$admin "${argv[@]}" --server "$cloud_url" --certificate-authority "$tmp/cloud/pki/ca.crt" apply -f "$tmp/app.json" 2>&1); then
  fail workload "edgectl apply failed: $applied"
fi
running_pid() { edge_status | jq -r '.workloads[] | select(.name == "verify-app" and .status.state == "Running") | .status.pid // empty'; }
has_running() { [ -n "$(running_pid)" ]; }
if wait_for 60 has_running && wait_for 10 test -s "$marker"; then
  workload_pid=$(running_pid)
  pass workload "App verify-app applied with the artefact's edgectl ($(printf '%s' "$applied" | head -n 1)), Running as pid $workload_pid"
else
  fail workload "App verify-app not Running: $(edge_status | jq -c '.workloads')"
fi

# --- the device broker: a real MQTT client's report reaches the cloud twin --------------------------
api POST /devicemodels '{"metadata":{"name":"verify-model"},"spec":{"protocol":"virtual","properties":[{"name":"temperature","type":"float","accessMode":"ReadOnly"}]}}' >/dev/null
password=$(api POST /devices "{\"metadata\":{\"name\":\"verify-dev\"},\"spec\":{\"model\":\"verify-model\",\"nodeName\":\"$node_name\",\"protocol\":{\"name\":\"virtual\",\"config\":{\"kind\":\"thermometer\"}}}}" | jq -r '.credentials.password // empty')
device_on_edge() { [ "$(edge_status | jq -r '.mqtt.devices | length' 2>/dev/null)" = 1 ]; }
reported() { [ "$(api GET /devices/verify-dev/twin | jq -r '.reported.temperature // empty')" = 21.5 ]; }
publish() {
  mosquitto_pub -h 127.0.0.1 -p "${mqtt_url##*:}" -V mqttv311 -u verify-dev -P "$password" -i verify-dev-pub -q 1 \
    -t ef/devices/verify-dev/twin/reported -m '{"properties":{"temperature":21.5}}' 2>/dev/null
}
if [ -n "$password" ] && wait_for 30 device_on_edge && wait_for 20 publish && wait_for 30 reported; then
  pass broker "mosquitto_pub as verify-dev on ${mqtt_url}: cloud twin reported temperature 21.5"
else
  fail broker "device report did not reach the cloud twin: $(api GET /devices/verify-dev/twin)"
fi

# --- the artefact's mapper binary (virtual protocol) serves the device through edgecore --------------
bin_argv mapper
"${argv[@]}" virtual --node "$node_name" --edge-url "$status_url" --mqtt "$mqtt_url" --credential-file "$tmp/data/mappers/virtual.password" \
  --refresh-seconds 1 > "$tmp/mapper.log" 2>&1 &
mapper_pid=$!
pids+=("$mapper_pid")
if wait_for "$start_timeout" has_log "$tmp/mapper.log" 'device connected'; then
  pass mapper "mapper virtual: fetched its device list from edgecore and connected verify-dev"
else
  fail mapper "mapper did not connect the device: $(tail -n 3 "$tmp/mapper.log")"
fi
kill "$mapper_pid"; wait "$mapper_pid" 2>/dev/null

# --- state in SQLite survives a restart, with the cloud gone ------------------------------------------
kill "$cloud_pid"; wait "$cloud_pid" 2>/dev/null
kill "$edge_pid"; wait "$edge_pid" 2>/dev/null
start_edge "$tmp/edge2.log" restart
restart_ready_ms=$(( ready_ms - started_ms ))
# The process runtime stops its workloads with edgecore (their log pipes end with it), so the
# workload comes back as a new process: from the desired state in the node's SQLite store, as
# the cloud is down. A runtime that adopts (containers) would keep the pid: both are accepted.
if wait_for 60 has_running; then
  pid_after=$(running_pid)
  [ "$pid_after" = "$workload_pid" ] && how="adopted, pid $pid_after" || how="started again, pid $pid_after"
  workload_pid=$pid_after
else
  pid_after=
fi
devices_after=$(edge_status | jq -r '.mqtt.devices | length')
if [ -n "$pid_after" ] && [ "$devices_after" = 1 ]; then
  pass restart "cloud down; edgecore restarted (ready in ${restart_ready_ms}ms): verify-app Running ($how) and verify-dev served, from its SQLite store"
  echo "metric restart_to_ready_ms=$restart_ready_ms"
else
  fail restart "after restart with the cloud down: workload Running pid '${pid_after}', devices ${devices_after:-?}"
fi
# The restarted edge relinks with its own credential (not the spent token) when the cloud is back.
start_cloud
if wait_for 60 linked; then
  pass relink "cloudcore back on port $cloud_port: relinked with the node's credential"
else
  fail relink "not relinked: $(edge_status | jq -c .link)"
fi

if [ "$failed" = 0 ]; then echo "verify $arch: ALL PASSED"; else echo "verify $arch: FAILED" >&2; fi
exit "$failed"
