#!/usr/bin/env bash
# A throw-away Podman engine serving the Docker Engine API on a unix socket, for the container
# runtime's tests (test/container/) and for trying edgecore's container runtime by hand.
# Everything it keeps (storage, run state, network config, temp files) lives under DIR, so it
# never touches a system Podman and two engines can run side by side.
#
#   test-engine.sh check               exit 0 if podman, runc and busybox-static are usable here
#   test-engine.sh serve DIR           run the engine in the foreground on unix://DIR/podman.sock
#   test-engine.sh start DIR           same, in the background (pid in DIR/engine.pid)
#   test-engine.sh stop DIR            stop the engine started by `start` (containers keep running)
#   test-engine.sh podman DIR ARGS...  run the podman CLI against DIR's storage
#   test-engine.sh image DIR REF       build the busybox test image REF (no registry needed)
#   test-engine.sh backend DIR         print the network backend podman uses for DIR (netavark or cni)
#   test-engine.sh cleanup DIR         remove DIR's containers, images and DIR itself
#
# Install: apt-get update && apt-get install -y podman runc busybox-static   (as root)
#
# Podman quirks on this machine (Debian 12, podman 4.3.1, cgroup v1 hybrid, running as root):
# - crun fails here; `--runtime runc` works.
# - Podman raises RLIMIT_NOFILE/NPROC for root containers by default and runc then fails with
#   "error setting rlimit type 7: operation not permitted": `default_ulimits = []` in
#   containers.conf keeps the engine's own (hard) limits instead.
# - No journald: `events_logger = "file"`, or the events API and `podman events` break.
# - Storage driver `vfs` works everywhere (overlay needs a kernel and filesystem that allow it).
# - The default network always uses bridge `podman0` and one subnet whatever `default_network`
#   says, so two engines would hand out the same addresses on the same bridge; each engine here
#   gets its own network (bridge `efbrN`, subnet 10.89.N.0/24) in DIR/networks instead.
# - Podman has two network backends and Debian's podman takes either: netavark where it is
#   installed (a Recommends), CNI (containernetworking-plugins) where `--no-install-recommends`
#   left netavark out. They read different files from the same directory (netavark `*.json`, CNI
#   `*.conflist`), so the network is written in both formats and whichever backend podman picks
#   finds it. `backend DIR` prints the one in use. CNI keeps its address leases in
#   /var/lib/cni/networks/efnetN and leaves the bridge behind: `cleanup` removes both.
# - `tmp_dir` defaults to the shared /run/libpod; exec sessions keep a conmon alive for
#   `exit_command_delay` (300 s): both set small/local here.
# - No registry is reachable: short names must not be resolved (empty registries.conf search
#   list), tests use `localhost/...` images made with `podman import`.
set -euo pipefail

die() { echo "test-engine: $*" >&2; exit 1; }

check() {
  [ "$(id -u)" = 0 ] || { echo "not root (rootful podman needed)"; return 3; }
  command -v podman >/dev/null || { echo "podman not installed (apt-get install -y podman runc busybox-static)"; return 3; }
  command -v runc >/dev/null || { echo "runc not installed (apt-get install -y runc)"; return 3; }
  [ -x /bin/busybox ] || { echo "/bin/busybox missing (apt-get install -y busybox-static)"; return 3; }
  echo ok
}

# Writes DIR's configuration once; the network number is chosen at first use and kept.
init_dir() {
  local dir=$1
  mkdir -p "$dir/root" "$dir/runroot" "$dir/tmp" "$dir/networks"
  if [ ! -f "$dir/net-id" ]; then
    local n tries=0
    while :; do
      n=$(( (RANDOM % 200) + 20 ))
      ip link show "efbr$n" >/dev/null 2>&1 || break
      tries=$((tries + 1)); [ $tries -lt 50 ] || die "no free efbrN bridge name"
    done
    echo "$n" >"$dir/net-id"
  fi
  local n; n=$(cat "$dir/net-id")
  cat >"$dir/containers.conf" <<EOF
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$dir/tmp"
exit_command_delay = 5
[network]
network_config_dir = "$dir/networks"
default_network = "efnet$n"
EOF
  cat >"$dir/registries.conf" <<EOF
unqualified-search-registries = []
short-name-mode = "disabled"
EOF
  cat >"$dir/networks/efnet$n.json" <<EOF
{
  "name": "efnet$n",
  "id": "$(printf 'ef%062d' "$n")",
  "driver": "bridge",
  "network_interface": "efbr$n",
  "created": "2026-01-01T00:00:00Z",
  "subnets": [ { "subnet": "10.89.$n.0/24", "gateway": "10.89.$n.1" } ],
  "ipv6_enabled": false,
  "internal": false,
  "dns_enabled": false,
  "ipam_options": { "driver": "host-local" }
}
EOF
  cat >"$dir/networks/efnet$n.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "efnet$n",
  "plugins": [
    {
      "type": "bridge", "bridge": "efbr$n", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "routes": [ { "dst": "0.0.0.0/0" } ],
        "ranges": [ [ { "subnet": "10.89.$n.0/24", "gateway": "10.89.$n.1" } ] ]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "firewall" },
    { "type": "tuning" }
  ]
}
EOF
}

podman_in() {
  local dir=$1; shift
  CONTAINERS_CONF="$dir/containers.conf" CONTAINERS_REGISTRIES_CONF="$dir/registries.conf" TMPDIR="$dir/tmp" \
    podman --root "$dir/root" --runroot "$dir/runroot" --storage-driver vfs --runtime runc "$@"
}

cmd=${1:-}; shift || true
case "$cmd" in
  check) check ;;
  serve)
    dir=${1:?DIR}; init_dir "$dir"
    CONTAINERS_CONF="$dir/containers.conf" CONTAINERS_REGISTRIES_CONF="$dir/registries.conf" TMPDIR="$dir/tmp" \
      exec podman --root "$dir/root" --runroot "$dir/runroot" --storage-driver vfs --runtime runc \
      system service --time=0 "unix://$dir/podman.sock" ;;
  start)
    dir=${1:?DIR}; init_dir "$dir"
    nohup "$0" serve "$dir" >"$dir/engine.log" 2>&1 &
    echo $! >"$dir/engine.pid"
    for _ in $(seq 1 100); do [ -S "$dir/podman.sock" ] && break; sleep 0.1; done
    [ -S "$dir/podman.sock" ] || die "engine did not start; see $dir/engine.log"
    echo "engine pid $(cat "$dir/engine.pid") on unix://$dir/podman.sock" ;;
  stop)
    dir=${1:?DIR}; [ -f "$dir/engine.pid" ] || die "no $dir/engine.pid"
    kill "$(cat "$dir/engine.pid")" 2>/dev/null || true; rm -f "$dir/engine.pid" ;;
  podman) dir=${1:?DIR}; shift; init_dir "$dir"; podman_in "$dir" "$@" ;;
  backend) dir=${1:?DIR}; init_dir "$dir"; podman_in "$dir" info --format '{{.Host.NetworkBackend}}' ;;
  image)
    dir=${1:?DIR}; ref=${2:?REF}; init_dir "$dir"
    rootfs=$(mktemp -d "$dir/tmp/rootfs.XXXXXX")
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/data"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in sh sleep echo cat ls env pwd wget nc httpd true false kill ps mkdir rm touch date id; do
      ln -s busybox "$rootfs/bin/$applet"
    done
    tar -C "$rootfs" -cf "$rootfs.tar" .
    podman_in "$dir" import --change 'ENV PATH=/bin' "$rootfs.tar" "$ref" >/dev/null
    rm -rf "$rootfs" "$rootfs.tar" ;;
  cleanup)
    dir=${1:?DIR}
    [ -d "$dir" ] || exit 0
    [ -f "$dir/containers.conf" ] || die "$dir is not a test-engine directory"
    podman_in "$dir" rm --all --force --time 0 >/dev/null 2>&1 || true
    podman_in "$dir" rmi --all --force >/dev/null 2>&1 || true
    # Each container's conmon runs `podman container cleanup` when it ends, writing into DIR;
    # exec sessions keep a conmon for exit_command_delay. Give them a moment, then end the
    # processes that still name this directory in their command line, by pid.
    for _ in $(seq 1 50); do [ -z "$(pgrep -f -- "$dir/" || true)" ] && break; sleep 0.2; done
    for pid in $(pgrep -f -- "$dir/" || true); do kill "$pid" 2>/dev/null || true; done
    # Mounts podman may have left (shm, network namespaces) under DIR, deepest first.
    awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    # What the CNI backend leaves outside DIR: its lease directory and the bridge (netavark
    # removes its bridge with the last container; CNI never does).
    if [ -f "$dir/net-id" ]; then
      n=$(cat "$dir/net-id")
      rm -rf "/var/lib/cni/networks/efnet$n"
      if ip link show "efbr$n" >/dev/null 2>&1; then ip link delete "efbr$n" 2>/dev/null || true; fi
    fi
    for _ in 1 2 3; do rm -rf "$dir" 2>/dev/null && break; sleep 0.5; done
    [ ! -e "$dir" ] || die "could not remove $dir" ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
