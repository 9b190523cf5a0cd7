#!/bin/sh
# EdgeFleet edge installer (docs/install.md). POSIX sh: dash, busybox ash and bash run it.
#
#   curl -fsSL --cacert CA https://CLOUD:PORT/install.sh | sh -s -- --token <join token>
#
# cloudcore fills in the three values below when it serves this file (GET /install.sh); a copy
# run from the repository takes them as --cloud, --version and --release-key instead.
# Everything happens inside main(), called on the last line: a download cut short runs nothing.
CLOUD_URL='@@EDGEFLEET_CLOUD_URL@@'
DEFAULT_VERSION='@@EDGEFLEET_DEFAULT_VERSION@@'
RELEASE_KEY='@@EDGEFLEET_RELEASE_KEY@@'

set -eu
umask 022

say() { printf 'edgefleet install: %s\n' "$*"; }
warn() { printf 'edgefleet install: WARNING: %s\n' "$*" >&2; }
die() { printf 'edgefleet install: ERROR: %s\n' "$*" >&2; exit 1; }
changed() { CHANGED=1; say "$*"; }

usage() {
  cat <<'EOF'
Usage: install.sh --token TOKEN [options]      install edgecore and join the fleet
       install.sh --uninstall [--purge]        remove it (--purge: its data too)
  --token TOKEN       the join token (or env EDGEFLEET_TOKEN, which ps does not show;
                      edgectl token create NODE --print-join-command prints the line)
  --node NAME         node name the token was made for (default: this host's name)
  --version V         release to install (default: the newest the cloud serves)
  --ca-file FILE      the cloud's CA bundle; without it a pinned token's pin is checked
                      against GET /hub/v1/ca and that bundle is used
  --cloud-url LIST    every cloudcore replica's URL, comma-separated, for edgecore to move among
                      (default: the URL this installer came from); downloads still use that one
  --set KEY=VALUE     one more edgecore setting in edgecore.yaml (repeatable), e.g. containerEngine=/run/podman/podman.sock
  --no-systemd        no systemd: start the agent detached (pid in /var/lib/edgefleet/loader.pid)
  --no-start          install and enable, but do not start (nor wait for the join)
  --join-timeout S    seconds to wait for the join (default 60)
  --root DIR          prefix every path with DIR (tests, image builds)
  --cloud URL         cloudcore's URL (when this file was not served by cloudcore)
  --release-key FILE  release public key, PEM (idem)
EOF
}

need_tools() {
  missing=''
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing="$missing $t"; done
  [ -z "$missing" ] || die "missing tool(s):$missing. Install them (e.g. apt-get install$missing) and run again"
}

# uname -m -> artefact arch (protocol/dist.ts UNAME_ARCH).
pick_arch() {
  m=$(uname -m)
  case "$m" in
    x86_64) ARCH=x64 ;;
    aarch64|arm64) ARCH=arm64 ;;
    armv7l|armv8l) ARCH=armv7 ;;
    *) die "unsupported architecture '$m': EdgeFleet ships x64 (x86_64), arm64 (aarch64) and armv7 (armv7l)" ;;
  esac
}

# The artefacts' SQLite addon is built on Debian 12: it needs glibc 2.34 or later, and no musl
# (arm-builds/README.md). Refused here, by name, rather than as a load error after the install.
# Where getconf is missing (BusyBox alone) the C library cannot be told: warned, not refused.
check_libc() {
  command -v getconf >/dev/null 2>&1 || { warn "cannot tell this node's C library (no getconf): EdgeFleet's artefacts need glibc 2.34 or later"; return 0; }
  libc=$(getconf GNU_LIBC_VERSION 2>/dev/null) || libc=''
  case "$libc" in
    'glibc '[0-9]*.[0-9]*) ;;
    *) die "this node's C library is not glibc (getconf GNU_LIBC_VERSION: ${libc:-nothing}): EdgeFleet's artefacts need glibc 2.34 or later; musl (Alpine) is not supported" ;;
  esac
  ver=${libc#glibc }
  major=${ver%%.*}
  minor=${ver#*.}
  minor=${minor%%[!0-9]*}
  if [ "$major" -lt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -lt 34 ]; }; then
    die "glibc $ver is too old: EdgeFleet's artefacts need glibc 2.34 or later (Debian 12, Ubuntu 22.04, RHEL 9 and newer)"
  fi
}

# curl with the trust decided in decide_trust; $1 URL, $2 output file. -C - resumes a cut download.
fetch() {
  if [ -n "$CA_FILE" ]; then
    curl -fsSL --proto "$PROTO" --retry 5 --retry-delay 1 -C - --cacert "$CA_FILE" -o "$2" "$1" || die "download failed: $1"
  else
    curl -fsSL --proto "$PROTO" --retry 5 --retry-delay 1 -C - -o "$2" "$1" || die "download failed: $1"
  fi
}

sha256_of() { openssl dgst -sha256 -r "$1" | cut -d' ' -f1; }

# How this node trusts cloudcore's HTTPS. The cloud's CA is its own, so the system's CAs do not
# know it; a pinned token (EF1-<pin>-...) carries the SHA-256 of the CA bundle, so the bundle is
# fetched once without verification, checked against the pin, and then used for every download.
decide_trust() {
  PROTO='=https'
  case "$CLOUD_URL" in
    http://*) PROTO='=http'; warn "$CLOUD_URL is plain HTTP: downloads are still checked against the release signature"; return ;;
    https://*) ;;
    *) die "cloud URL '$CLOUD_URL' is not http(s)://host:port" ;;
  esac
  pin=''
  case "$TOKEN" in EF1-*) pin=$(printf '%s' "$TOKEN" | cut -d- -f2) ;; esac
  if [ -z "$CA_FILE" ] && [ -n "$pin" ]; then
    CA_FILE="$WORK/ca.pem"
    curl -fsS --proto '=https' --insecure -o "$CA_FILE" "$CLOUD_URL/hub/v1/ca" || die "cannot fetch the CA bundle from $CLOUD_URL/hub/v1/ca"
  fi
  if [ -n "$CA_FILE" ] && [ -n "$pin" ]; then
    [ "$(sha256_of "$CA_FILE")" = "$pin" ] || die "the cloud's CA bundle does not match the pin in the join token: this is not the cloud the token came from; nothing installed"
  fi
  [ -n "$CA_FILE" ] || [ -n "$UNINSTALL" ] || warn "no --ca-file and no pinned token: trusting cloudcore's certificate through the system's CAs"
}

# Downloads SHA256SUMS + .sig of $VERSION and checks the signature under the release key.
verify_sums() {
  printf '%s\n' "$RELEASE_KEY" > "$WORK/release-key.pub"
  fetch "$CLOUD_URL/dist/$VERSION/SHA256SUMS" "$WORK/SHA256SUMS"
  fetch "$CLOUD_URL/dist/$VERSION/SHA256SUMS.sig" "$WORK/SHA256SUMS.sig"
  openssl base64 -d -A -in "$WORK/SHA256SUMS.sig" -out "$WORK/sig.bin" 2>/dev/null || die "SHA256SUMS.sig of $VERSION is not base64"
  openssl pkeyutl -verify -pubin -inkey "$WORK/release-key.pub" -rawin -in "$WORK/SHA256SUMS" -sigfile "$WORK/sig.bin" >/dev/null 2>&1 \
    || die "bad signature: SHA256SUMS of $VERSION is not signed by the release key; nothing installed"
  NAME="edgefleet-edge-$VERSION-linux-$ARCH.tar.gz"
  SUM=$(awk -v n="$NAME" '$2 == n || $2 == ("*" n) { print $1; exit }' "$WORK/SHA256SUMS")
  [ -n "$SUM" ] || die "release $VERSION has no artefact for $ARCH ($NAME)"
}

# Unpacks the verified tarball beside any installed version, then renames it into place.
install_release() {
  marker="$OPT/$VERSION/.artefact-sha256"
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$SUM" ]; then
    say "release $VERSION ($ARCH) already installed in $OPT/$VERSION"
    return
  fi
  [ ! -e "$OPT/$VERSION" ] || die "$OPT/$VERSION exists but is not the verified $NAME: move it away and run again"
  fetch "$CLOUD_URL/dist/$VERSION/$NAME" "$WORK/$NAME"
  [ "$(sha256_of "$WORK/$NAME")" = "$SUM" ] || die "bad checksum: $NAME does not match SHA256SUMS; nothing installed"
  top="edgefleet-edge-$VERSION-linux-$ARCH"
  # Every member under the one top directory, none climbing out of it.
  tar -tzf "$WORK/$NAME" | awk -v t="$top" '(index($0, t "/") != 1 && $0 != t) || $0 ~ /(^|\/)\.\.(\/|$)/ { bad = 1 } END { exit bad }' \
    || die "$NAME holds paths outside $top/; nothing installed"
  mkdir -p "$OPT"
  stage="$OPT/.staging-$VERSION-$$"
  rm -rf "$stage"
  mkdir "$stage"
  tar -xzf "$WORK/$NAME" -C "$stage" --strip-components=1 -o || { rm -rf "$stage"; die "cannot unpack $NAME"; }
  [ "$(cat "$stage/VERSION" 2>/dev/null)" = "$VERSION" ] && [ "$(cat "$stage/ARCH" 2>/dev/null)" = "$ARCH" ] \
    || { rm -rf "$stage"; die "$NAME does not say VERSION $VERSION / ARCH $ARCH inside; nothing installed"; }
  printf '%s\n' "$SUM" > "$stage/.artefact-sha256"
  mv "$stage" "$OPT/$VERSION"
  changed "installed release $VERSION ($ARCH) in $OPT/$VERSION"
}

switch_current() {
  if [ "$(readlink "$OPT/current" 2>/dev/null || true)" = "$VERSION" ]; then return; fi
  # A new link renamed over the old one (as the upgrade loader does): never a moment without one.
  # Where mv has no -T (old BusyBox), ln -sfn.
  tmp="$OPT/.current.tmp.$$"
  rm -f "$tmp"
  if ! { ln -s "$VERSION" "$tmp" && mv -f -T "$tmp" "$OPT/current" 2>/dev/null; }; then rm -f "$tmp"; ln -sfn "$VERSION" "$OPT/current"; fi
  changed "$OPT/current -> $VERSION"
}

joined() { [ -L "$DATA/pki/current" ] || [ -f "$DATA/node.credential" ]; }

yaml_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }

# The settings edgecore reads (--config); the join token file only until the node has joined.
write_config() {
  mkdir -p "$ETC" "$DATA"
  chmod 0700 "$DATA"
  new="$WORK/edgecore.yaml"
  {
    echo '# Written by the EdgeFleet installer; edgecore --config reads it (docs/install.md).'
    echo "node: $(yaml_quote "$NODE")"
    echo "cloudUrl: $(yaml_quote "${EDGE_CLOUD_URLS:-$CLOUD_URL}")"
    echo "dataDir: $(yaml_quote "$DATA")"
    echo 'keepWorkloadsOnExit: true'
    if ! joined; then echo "joinTokenFile: $(yaml_quote "$ETC/join-token")"; fi
    printf '%s' "$SETTINGS"
  } > "$new"
  if ! joined; then
    [ -n "$TOKEN" ] || die "this node has not joined yet: pass --token (edgectl token create $NODE --print-join-command)"
    if [ "$(cat "$ETC/join-token" 2>/dev/null || true)" != "$TOKEN" ]; then
      (umask 077; printf '%s\n' "$TOKEN" > "$ETC/join-token.new")
      mv "$ETC/join-token.new" "$ETC/join-token"
      changed "wrote the join token to $ETC/join-token (0600; removed once the node has joined)"
    fi
  elif [ -n "$TOKEN" ] && [ -z "${JUST_JOINED:-}" ]; then
    say "node already joined (identity in $DATA): the token is not used"
  fi
  if ! cmp -s "$new" "$ETC/edgecore.yaml"; then
    mv "$new" "$ETC/edgecore.yaml"
    changed "wrote $ETC/edgecore.yaml"
  fi
}

loader_pid() {
  pid=$(cat "$DATA/loader.pid" 2>/dev/null || true)
  case "$pid" in ''|*[!0-9]*) return 1 ;; esac
  # Ours only if its command line runs from this install (a pid file can outlive its process).
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$OPT/" || return 1
  echo "$pid"
}

start_detached() {
  if loader_pid >/dev/null && [ "$CHANGED" = 0 ]; then say "edgecore already running (pid $(loader_pid))"; return; fi
  stop_detached
  prog="$OPT/current/bin/edgefleet-loader"
  if [ ! -x "$prog" ]; then
    warn "this release has no bin/edgefleet-loader: starting bin/edgecore directly (no upgrade rollback)"
    prog="$OPT/current/bin/edgecore"
  fi
  mkdir -p "$LOGDIR"
  # setsid: a session of its own, so the terminal's hangup never reaches it (no nohup needed).
  EDGEFLEET_HOME="$OPT" setsid "$prog" --config "$ETC/edgecore.yaml" >>"$LOGDIR/edgecore.log" 2>&1 </dev/null &
  echo $! > "$DATA/loader.pid"
  changed "started edgecore detached (pid $!, log $LOGDIR/edgecore.log)"
}

stop_detached() {
  pid=$(loader_pid) || { rm -f "$DATA/loader.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$DATA/loader.pid"
  say "stopped edgecore (pid $pid)"
}

install_unit() {
  src="$OPT/current/share/systemd/edgecore.service"
  [ -f "$src" ] || die "release $VERSION has no share/systemd/edgecore.service"
  mkdir -p "$UNITDIR"
  if ! cmp -s "$src" "$UNITDIR/edgecore.service"; then
    cp "$src" "$UNITDIR/edgecore.service"
    changed "installed $UNITDIR/edgecore.service"
  fi
  [ -n "$ROOT" ] && { say "--root: the unit is not enabled or started"; return; }
  # edgecore would make this group itself at its first start, but the unit's read-only /etc
  # (ProtectSystem=strict) stops useradd there; workloads each run as their own uid in it.
  if ! grep -q '^edgefleet-workload:' /etc/group && command -v useradd >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin edgefleet-workload
    changed "created the system user and group edgefleet-workload"
  fi
  systemctl daemon-reload
  systemctl is-enabled --quiet edgecore.service 2>/dev/null || { systemctl enable edgecore.service; changed "enabled edgecore.service"; }
  [ -n "$NO_START" ] && return
  if [ "$CHANGED" = 1 ]; then systemctl restart edgecore.service; say "(re)started edgecore.service"
  elif ! systemctl is-active --quiet edgecore.service; then systemctl start edgecore.service; changed "started edgecore.service"
  else say "edgecore.service already running"; fi
}

# Waits for the join, then takes the token off disk and out of the config.
await_join() {
  if joined; then return; fi
  say "waiting up to ${JOIN_TIMEOUT}s for node '$NODE' to join $CLOUD_URL ..."
  i=0
  while ! joined; do
    [ $i -lt $((JOIN_TIMEOUT * 2)) ] || die "node '$NODE' has not joined after ${JOIN_TIMEOUT}s: see $( [ -n "$NO_SYSTEMD" ] && echo "$LOGDIR/edgecore.log" || echo 'journalctl -u edgecore' ); edgecore keeps trying"
    sleep 0.5; i=$((i + 1))
  done
  JUST_JOINED=1
  write_config
  rm -f "$ETC/join-token"
  changed "node '$NODE' joined; removed the join token"
}

uninstall() {
  if [ -n "$NO_SYSTEMD" ] || [ -n "$ROOT" ] || ! command -v systemctl >/dev/null 2>&1; then stop_detached
  else systemctl disable --now edgecore.service 2>/dev/null || true; fi
  rm -f "$UNITDIR/edgecore.service"
  [ -n "$ROOT" ] || ! command -v systemctl >/dev/null 2>&1 || systemctl daemon-reload || true
  rm -rf "$OPT" "$ETC" "$LOGDIR"
  if [ -n "$PURGE" ]; then rm -rf "$DATA"; say "removed $DATA (--purge)"
  else say "kept $DATA (the node's identity and state; --purge removes it)"; fi
  say "uninstalled: $OPT, $ETC and the unit removed"
}

main() {
  # The token from the environment keeps it out of the process list (ps shows argv to every local user).
  TOKEN=${EDGEFLEET_TOKEN:-} EDGE_CLOUD_URLS='' NODE='' VERSION='' CA_FILE='' ROOT='' SETTINGS='' NO_SYSTEMD='' NO_START='' UNINSTALL='' PURGE='' JOIN_TIMEOUT=60 KEY_FILE=''
  while [ $# -gt 0 ]; do
    case "$1" in
      --token) TOKEN=${2?--token needs a value}; shift ;;
      --node) NODE=${2?--node needs a value}; shift ;;
      --version) VERSION=${2?--version needs a value}; shift ;;
      --ca-file) CA_FILE=${2?--ca-file needs a file}; shift ;;
      --root) ROOT=${2?--root needs a directory}; shift ;;
      --cloud) CLOUD_URL=${2?--cloud needs a URL}; shift ;;
      --cloud-url) EDGE_CLOUD_URLS=${2?--cloud-url needs a URL or a comma-separated list}; shift ;;
      --release-key) KEY_FILE=${2?--release-key needs a file}; shift ;;
      --join-timeout) JOIN_TIMEOUT=${2?--join-timeout needs seconds}; shift ;;
      --set)
        kv=${2?--set needs KEY=VALUE}; shift
        key=${kv%%=*}
        case "$key" in ''|*[!A-Za-z0-9]*|"$kv") die "--set '$kv' is not KEY=VALUE with a camelCase edgecore setting" ;; esac
        [ "$key" != cloudUrl ] || die "--set cloudUrl=...: use --cloud-url LIST (the installer writes cloudUrl itself)"
        SETTINGS="$SETTINGS$key: $(yaml_quote "${kv#*=}")
" ;;
      --no-systemd) NO_SYSTEMD=1 ;;
      --no-start) NO_START=1 ;;
      --uninstall) UNINSTALL=1 ;;
      --purge) PURGE=1 ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown option '$1'" ;;
    esac
    shift
  done
  case "$JOIN_TIMEOUT" in ''|*[!0-9]*) die "--join-timeout '$JOIN_TIMEOUT' is not a number of seconds" ;; esac
  # Each entry checked here only for its form; edgecore checks the rest (and names the entry) at start.
  bad_url=$(printf '%s\n' "$EDGE_CLOUD_URLS" | tr ',' '\n' | sed 's/^ *//; s/ *$//' | grep -Ev '^https?://[^/[:space:]]+/?$' | head -n 1 || true)
  [ -z "$EDGE_CLOUD_URLS" ] || [ -z "$bad_url" ] || die "--cloud-url: '$bad_url' is not http(s)://host:port (give every replica's URL, comma-separated)"
  ROOT=${ROOT%/}
  OPT="$ROOT/opt/edgefleet" ETC="$ROOT/etc/edgefleet" DATA="$ROOT/var/lib/edgefleet"
  UNITDIR="$ROOT/etc/systemd/system" LOGDIR="$ROOT/var/log/edgefleet"
  CHANGED=0

  if [ -n "$UNINSTALL" ]; then uninstall; exit 0; fi

  [ -n "$ROOT" ] || [ "$(id -u)" = 0 ] || die "run as root (e.g. curl ... | sudo sh -s -- ...): it installs under /opt, /etc and systemd"
  need_tools curl tar openssl awk cut uname mktemp cmp readlink
  pick_arch
  check_libc
  # Ed25519 needs a one-shot verify (pkeyutl -rawin): OpenSSL 3.0 or later. An older one would
  # fail every signature, so say what is missing instead of "bad signature".
  openssl pkeyutl -help 2>&1 | grep -q -- '-rawin' \
    || die "$(openssl version) cannot verify Ed25519 signatures (no pkeyutl -rawin): OpenSSL 3.0 or later is needed"
  if [ -z "$NO_SYSTEMD" ] && [ -z "$ROOT" ]; then
    [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 \
      || die "systemd is not running on this machine: run again with --no-systemd to start edgecore without it (no restart on crash or boot)"
  fi
  [ -z "$NO_SYSTEMD" ] || need_tools setsid
  # Into another root (an image being built), the unit is written but nothing starts, so there is no join to wait for.
  if [ -n "$ROOT" ] && [ -z "$NO_SYSTEMD" ]; then NO_START=1; fi
  case "$CLOUD_URL" in @@*) die "this installer was not served by cloudcore: pass --cloud https://CLOUD:PORT" ;; esac
  if [ -n "$KEY_FILE" ]; then RELEASE_KEY=$(cat "$KEY_FILE") || die "cannot read --release-key $KEY_FILE"; fi
  case "$RELEASE_KEY" in '-----BEGIN PUBLIC KEY-----'*) ;; *) die "no release public key: pass --release-key FILE" ;; esac
  if [ -z "$VERSION" ]; then
    case "$DEFAULT_VERSION" in @@*) die "no release version: pass --version V" ;; esac
    VERSION=$DEFAULT_VERSION
  fi
  case "$VERSION" in [0-9A-Za-z]*) ;; *) die "'$VERSION' is not a release version" ;; esac
  case "$VERSION" in *[!0-9A-Za-z.+_-]*|*..*) die "'$VERSION' is not a release version" ;; esac
  [ -n "$NODE" ] || NODE=$(hostname 2>/dev/null || cat /etc/hostname) || die "cannot read this host's name: pass --node NAME"
  NODE=$(printf '%s' "$NODE" | tr 'A-Z' 'a-z')
  printf '%s' "$NODE" | grep -Eq '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$' || die "node name '$NODE' is not a DNS label: pass --node NAME"
  case "$TOKEN" in *[!A-Za-z0-9.-]*) die "the join token holds characters a token never has: copy it again" ;; esac

  WORK=$(mktemp -d "${TMPDIR:-/tmp}/edgefleet-install.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  trap 'exit 1' INT TERM HUP
  decide_trust
  verify_sums
  install_release
  switch_current
  write_config
  if [ -n "$NO_SYSTEMD" ]; then
    if [ -z "$NO_START" ]; then start_detached; fi
  else
    install_unit
  fi
  if [ -z "$NO_START" ]; then await_join; fi
  if [ "$CHANGED" = 0 ]; then say "edgefleet $VERSION is already installed as asked: nothing changed"
  else say "done: edgefleet $VERSION ($ARCH) on node '$NODE'"; fi
}

main "$@"
