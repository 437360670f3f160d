#!/usr/bin/env bash
# Provision what skiff-core's main job (`npm start`) and its tests need on this machine,
# idempotently. Each part can be asked for alone; with no argument, all of them:
#   engine       Debian's docker.io, and a Docker engine answering on $DOCKER_HOST's socket
#                (default /var/run/docker.sock), started in the background if none answers
#   base-images  skiff-core-test/busybox:latest and skiff-core-test/debian-systemd:bookworm,
#                made locally (busybox-static; debootstrap from Debian's archive, cached)
#   registry     a plain-HTTP registry (docker-registry) on 127.0.0.1:5000, for the tests
#   device       skiff-core-test/debian-sshd:bookworm (the tests' device image) and the tools the
#                tests use on the host (OpenSSH client and server, git, make, gcc, systemd-analyze)
#   cross        the ARM cross compilers (armhf, aarch64) and qemu-user-static: the login client's
#                tests build it for the boards and run it emulated; clang-format for its layout
#
# Run as root: `bash scripts/provision.sh [PART...]`. A second run is a fast no-op. `npm start`
# runs the engine and base-images parts by itself when it needs them.
# Writes nothing into the repository; state lives under /var/lib/skiff-core-test,
# /var/cache/skiff-core-test and /var/log/skiff-core-test-*.log.
#
# With DOCKER_HOST=unix:///DIR/docker.sock (not the default socket) and no engine answering
# there, the engine part starts a second engine of its own: data, state and log in DIR, in a
# network namespace of its own with no bridge (so it never touches the first engine's network;
# its containers have no network and its pulls reach no registry).
#
# Tunables (environment):
#   SKIFF_TEST_DEBIAN_MIRROR  Debian mirror for debootstrap (default: the one apt is configured with)
#   SKIFF_TEST_REGISTRY       read by the tests; this script only manages 127.0.0.1:5000 and says
#                             so when the variable points elsewhere
set -euo pipefail

ALL_PARTS=(engine base-images registry device cross)
PARTS=("$@")
((${#PARTS[@]})) || PARTS=("${ALL_PARTS[@]}")
for part in "${PARTS[@]}"; do
  [[ " ${ALL_PARTS[*]} " == *" $part "* ]] || {
    printf '[provision] ERROR: unknown part "%s"; the parts are: %s\n' "$part" "${ALL_PARTS[*]}" >&2
    exit 2
  }
done
# The device image is made from the Debian base image.
[[ " ${PARTS[*]} " == *" device "* && " ${PARTS[*]} " != *" base-images "* ]] && PARTS+=(base-images)
wants() { [[ " ${PARTS[*]} " == *" $1 "* ]]; }

readonly STATE_DIR=/var/lib/skiff-core-test
readonly CACHE_DIR=/var/cache/skiff-core-test
readonly REGISTRY_DIR="$STATE_DIR/registry"
readonly REGISTRY_CONFIG="$REGISTRY_DIR/config.yml"
readonly REGISTRY_ADDR=127.0.0.1:5000
readonly DOCKERD_LOG=/var/log/skiff-core-test-dockerd.log
readonly REGISTRY_LOG=/var/log/skiff-core-test-registry.log
readonly APT_LOG=/var/log/skiff-core-test-apt.log
readonly DEBOOTSTRAP_LOG=/var/log/skiff-core-test-debootstrap.log
readonly BUSYBOX_IMAGE=skiff-core-test/busybox:latest
readonly DEBIAN_IMAGE=skiff-core-test/debian-systemd:bookworm
# Bump these when the recipe below changes: images carrying another label are rebuilt
# (the tarball name carries the version too, so a stale cache is never reused).
readonly BUSYBOX_RECIPE=busybox-v1
readonly DEBIAN_RECIPE=debian-systemd-bookworm-v1
readonly LABEL_KEY=skiff-core-test.recipe
readonly DEBIAN_TARBALL="$CACHE_DIR/debian-bookworm-v1.tar"
readonly DEBIAN_INCLUDE=systemd,systemd-sysv,dbus,sudo,passwd,bash,procps,openssh-sftp-server,ca-certificates
readonly DEFAULT_SOCK=/var/run/docker.sock

START_SECONDS=$SECONDS
SUMMARY=()

# start_daemon LOGFILE CMD... : run CMD in its own session, detached from every inherited fd
# (a CI runner waiting for its output pipes to close must not wait for the daemon). Sets DAEMON_PID.
start_daemon() {
  local logf=$1 fd
  shift
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      if [[ "$fd" =~ ^[0-9]+$ ]] && ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid "$@" >>"$logf" 2>&1 </dev/null
  ) &
  DAEMON_PID=$!
}

log() { printf '[provision] %s\n' "$*" >&2; }
note() { SUMMARY+=("$*"); log "$*"; }
die() {
  printf '[provision] ERROR: %s\n' "$*" >&2
  exit 1
}
show_tail() { # FILE LINES
  if [[ -f "$1" ]]; then
    printf '[provision] ---- last %s lines of %s ----\n' "$2" "$1" >&2
    tail -n "$2" "$1" >&2 || true
    printf '[provision] ---- end of %s ----\n' "$1" >&2
  fi
}

[[ "$(id -u)" == 0 ]] || die "must run as root (installs packages, starts dockerd)"

# Never let a login/CI environment point the docker CLI somewhere else than what we check.
unset DOCKER_CONTEXT
if [[ -n "${DOCKER_HOST:-}" ]]; then
  case "$DOCKER_HOST" in
    unix://*) DOCKER_SOCK="${DOCKER_HOST#unix://}" ;;
    *) die "DOCKER_HOST=$DOCKER_HOST is not a unix socket; this script only provisions a local engine" ;;
  esac
else
  DOCKER_SOCK=$DEFAULT_SOCK
fi
export DOCKER_HOST="unix://$DOCKER_SOCK"

# One provisioning at a time (several shells may run the tests concurrently).
# Background daemons are started with this fd closed (start_daemon) so they don't keep the lock.
mkdir -p "$STATE_DIR" "$CACHE_DIR" /run/lock
exec 9>/run/lock/skiff-core-test-provision.lock
if ! flock -n 9; then
  log "another provision.sh is running; waiting for it (up to 30 min)"
  flock -w 1800 9 || die "timed out waiting for the provisioning lock"
fi

###############################################################################
# 1. Debian packages
###############################################################################
export DEBIAN_FRONTEND=noninteractive
export NEEDRESTART_SUSPEND=1 NEEDRESTART_MODE=l

# The engine needs curl (the checks below) and ca-certificates; the base images debootstrap.
PACKAGES=(curl ca-certificates)
if wants engine; then
  PACKAGES+=(docker.io)
  # dockerd applies an AppArmor profile when the kernel has AppArmor enabled; it then needs the parser.
  if [[ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || true)" == Y ]]; then
    PACKAGES+=(apparmor)
  fi
fi
wants base-images && PACKAGES+=(debootstrap busybox-static xz-utils debian-archive-keyring)
wants registry && PACKAGES+=(docker-registry)
wants device && PACKAGES+=(openssh-server openssh-client git make gcc libc6-dev systemd)
wants cross && PACKAGES+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static clang-format)

is_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == installed ]]
}

MISSING=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || MISSING+=("$pkg")
done

if ((${#MISSING[@]})); then
  log "installing packages: ${MISSING[*]} (log: $APT_LOG)"
  t0=$SECONDS
  # Unreachable third-party sources only produce warnings; a real failure shows up at install.
  if ! apt-get update -q >>"$APT_LOG" 2>&1; then
    log "warning: apt-get update reported errors (continuing; see $APT_LOG)"
  fi
  # --no-install-recommends keeps systemd (via openssh-server's libpam-systemd) and friends off the host.
  if ! apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${MISSING[@]}" >>"$APT_LOG" 2>&1 </dev/null; then
    show_tail "$APT_LOG" 40
    die "apt-get install ${MISSING[*]} failed"
  fi
  note "packages: installed ${MISSING[*]} in $((SECONDS - t0))s"
else
  note "packages: all present"
fi

NEEDED_BINS=(curl docker)
wants engine && NEEDED_BINS+=(dockerd)
wants base-images && NEEDED_BINS+=(debootstrap)
wants registry && NEEDED_BINS+=(docker-registry)
wants cross && NEEDED_BINS+=(arm-linux-gnueabihf-gcc aarch64-linux-gnu-gcc qemu-arm-static qemu-aarch64-static clang-format)
for bin in "${NEEDED_BINS[@]}"; do
  command -v "$bin" >/dev/null || die "'$bin' not found on PATH after installing packages"
done
BUSYBOX_BIN=/bin/busybox

###############################################################################
# 2. Docker engine
###############################################################################
engine_answers() {
  [[ -S "$DOCKER_SOCK" ]] &&
    [[ "$(curl -fsS --max-time 5 --unix-socket "$DOCKER_SOCK" http://localhost/_ping 2>/dev/null || true)" == OK ]]
}

# start_engine: dockerd on $DOCKER_SOCK. The default socket gets the machine's engine; another
# one gets a private engine with everything in the socket's folder (see the header).
start_engine() {
  local pidfile=/var/run/docker.pid logf=$DOCKERD_LOG args=() pid dir
  if [[ "$DOCKER_SOCK" != "$DEFAULT_SOCK" ]]; then
    dir=$(dirname "$DOCKER_SOCK")
    mkdir -p "$dir"
    pidfile=$dir/docker.pid
    logf=$dir/dockerd.log
    # Its own network namespace: with --bridge none, dockerd deletes any docker0 it sees, which
    # must never be the first engine's. Its own containerd namespaces keep the two apart there too.
    args=(unshare --net dockerd --host "unix://$DOCKER_SOCK" --data-root "$dir/data" --exec-root "$dir/exec"
      --pidfile "$pidfile" --bridge none --iptables=false --ip-masq=false
      --containerd-namespace "${dir##*/}-moby" --containerd-plugins-namespace "${dir##*/}-plugins")
  fi
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [[ "$pid" =~ ^[0-9]+$ && "$(cat "/proc/$pid/comm" 2>/dev/null || true)" == dockerd ]]; then
    log "dockerd is running (pid $pid) but $DOCKER_SOCK does not answer yet; waiting for it"
  else
    log "starting dockerd on $DOCKER_SOCK (log: $logf)"
    printf '\n==== %s provision.sh starting dockerd ====\n' "$(date -Is)" >>"$logf"
    start_daemon "$logf" "${args[@]:-dockerd}"
    DOCKERD_PID=$DAEMON_PID
  fi
  for ((i = 0; i < 120; i++)); do
    engine_answers && break
    if [[ -n "${DOCKERD_PID:-}" ]] && ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
      show_tail "$logf" 40
      die "dockerd exited during startup"
    fi
    sleep 0.5
  done
  if ! engine_answers; then
    show_tail "$logf" 40
    die "Docker engine did not answer GET /_ping on $DOCKER_SOCK within 60s"
  fi
  note "engine: started dockerd, answering on $DOCKER_SOCK after $((i / 2))s"
}

if engine_answers; then
  note "engine: already answering on $DOCKER_SOCK"
elif wants engine; then
  start_engine
else
  die "no Docker engine answers on $DOCKER_SOCK; run: bash scripts/provision.sh engine"
fi
ENGINE_VERSION=$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null || echo unknown)

###############################################################################
# 3. Loopback registry on 127.0.0.1:5000
###############################################################################
provision_registry() {
if [[ -n "${SKIFF_TEST_REGISTRY:-}" && "$SKIFF_TEST_REGISTRY" != "$REGISTRY_ADDR" ]]; then
  log "note: SKIFF_TEST_REGISTRY=$SKIFF_TEST_REGISTRY; this script only manages $REGISTRY_ADDR"
fi
registry_answers() { curl -fsS --max-time 5 "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; }

if registry_answers; then
  note "registry: already answering on $REGISTRY_ADDR"
else
  mkdir -p "$REGISTRY_DIR/data"
  config="version: 0.1
log:
  level: info
  fields:
    service: skiff-core-test-registry
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
"
  if [[ ! -f "$REGISTRY_CONFIG" || "$(cat "$REGISTRY_CONFIG")" != "${config%$'\n'}" ]]; then
    printf '%s' "$config" >"$REGISTRY_CONFIG"
  fi
  log "starting docker-registry on $REGISTRY_ADDR (log: $REGISTRY_LOG)"
  printf '\n==== %s provision.sh starting docker-registry ====\n' "$(date -Is)" >>"$REGISTRY_LOG"
  start_daemon "$REGISTRY_LOG" docker-registry serve "$REGISTRY_CONFIG"
  REGISTRY_PID=$DAEMON_PID
  for ((i = 0; i < 60; i++)); do
    registry_answers && break
    if ! kill -0 "$REGISTRY_PID" 2>/dev/null; then
      show_tail "$REGISTRY_LOG" 30
      die "docker-registry exited during startup (is something else bound to $REGISTRY_ADDR?)"
    fi
    sleep 0.5
  done
  if ! registry_answers; then
    show_tail "$REGISTRY_LOG" 30
    die "registry did not answer http://$REGISTRY_ADDR/v2/ within 30s"
  fi
  note "registry: started docker-registry on $REGISTRY_ADDR (storage $REGISTRY_DIR/data)"
fi
}
wants registry && provision_registry


###############################################################################
# 4. Base images
###############################################################################
# image_state TAG RECIPE -> "current", "missing" or "stale" (tag exists, built by something else)
image_state() {
  local label
  if ! label=$(docker image inspect -f "{{index .Config.Labels \"$LABEL_KEY\"}}" "$1" 2>/dev/null); then
    echo missing
  elif [[ "$label" == "$2" ]]; then
    echo current
  else
    echo stale
  fi
}

TMP_DIRS=()
cleanup_tmp() {
  local d
  for d in "${TMP_DIRS[@]}"; do
    [[ -n "$d" && -d "$d" ]] && rm -rf --one-file-system "$d"
  done
  return 0
}
trap cleanup_tmp EXIT

# --- busybox ---------------------------------------------------------------
provision_busybox() {
  [[ -x "$BUSYBOX_BIN" ]] || die "$BUSYBOX_BIN missing (package busybox-static)"
state=$(image_state "$BUSYBOX_IMAGE" "$BUSYBOX_RECIPE")
if [[ "$state" == current ]]; then
  note "image: $BUSYBOX_IMAGE present"
else
  [[ "$state" == stale ]] && log "$BUSYBOX_IMAGE exists but lacks label $LABEL_KEY=$BUSYBOX_RECIPE; rebuilding"
  log "building $BUSYBOX_IMAGE from $BUSYBOX_BIN"
  root=$(mktemp -d /tmp/skiff-core-test-busybox.XXXXXX)
  TMP_DIRS+=("$root")
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,tmp,var/tmp,proc,sys,dev,run}
  chmod 1777 "$root/tmp" "$root/var/tmp"
  chmod 700 "$root/root"
  cp "$BUSYBOX_BIN" "$root/bin/busybox"
  while read -r applet; do
    [[ -n "$applet" && "$applet" != busybox && ! -e "$root/bin/$applet" ]] || continue
    ln -s busybox "$root/bin/$applet"
  done < <("$BUSYBOX_BIN" --list)
  for applet in sh env; do
    [[ -L "$root/bin/$applet" ]] || die "busybox has no '$applet' applet"
  done
  ln -s /bin/busybox "$root/usr/bin/env"
  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
  cat >"$root/etc/shadow" <<'EOF'
root:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
EOF
  chmod 640 "$root/etc/shadow"
  tar -C "$root" --numeric-owner --owner=0 --group=0 -c . |
    docker import --change 'CMD ["/bin/sh"]' --change "LABEL $LABEL_KEY=$BUSYBOX_RECIPE" \
      -m "skiff-core test harness: $BUSYBOX_RECIPE" - "$BUSYBOX_IMAGE" >/dev/null
  out=$(docker run --rm --network none "$BUSYBOX_IMAGE" sh -c 'echo ok; id -u') ||
    die "smoke test of $BUSYBOX_IMAGE failed"
  [[ "$out" == $'ok\n0' ]] || die "smoke test of $BUSYBOX_IMAGE printed unexpected output: $out"
  note "image: built $BUSYBOX_IMAGE"
fi
}

# --- debian + systemd --------------------------------------------------------
debian_mirror() {
  if [[ -n "${SKIFF_TEST_DEBIAN_MIRROR:-}" ]]; then
    echo "$SKIFF_TEST_DEBIAN_MIRROR"
    return
  fi
  local f uri=""
  # one-line format: deb [opts] URI SUITE COMPONENTS...
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    uri=$(awk '$1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == "bookworm") { print $i; exit }
      }' "$f")
    [[ -n "$uri" ]] && break
  done
  # deb822 format
  if [[ -z "$uri" ]]; then
    for f in /etc/apt/sources.list.d/*.sources; do
      [[ -f "$f" ]] || continue
      uri=$(awk '
        function flush() { if (deb && suite && uris != "") { split(uris, u, " "); print u[1]; found = 1; exit } deb = 0; suite = 0; uris = "" }
        /^[[:space:]]*$/ { flush(); next }
        /^#/ { next }
        tolower($1) == "types:" { for (j = 2; j <= NF; j++) if ($j == "deb") deb = 1 }
        tolower($1) == "uris:" { uris = ""; for (j = 2; j <= NF; j++) uris = uris " " $j }
        tolower($1) == "suites:" { for (j = 2; j <= NF; j++) if ($j == "bookworm") suite = 1 }
        END { if (!found) flush() }' "$f")
      [[ -n "$uri" ]] && break
    done
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

verify_debian_image() {
  docker run --rm --network none --entrypoint /bin/sh "$DEBIAN_IMAGE" -c \
    'test -x /lib/systemd/systemd && test -x /usr/lib/openssh/sftp-server && test -x /usr/bin/sudo && test -x /bin/bash'
}

provision_debian() {
state=$(image_state "$DEBIAN_IMAGE" "$DEBIAN_RECIPE")
if [[ "$state" == current ]]; then
  note "image: $DEBIAN_IMAGE present"
else
  [[ "$state" == stale ]] && log "$DEBIAN_IMAGE exists but lacks label $LABEL_KEY=$DEBIAN_RECIPE; rebuilding"
  if [[ -s "$DEBIAN_TARBALL" ]]; then
    log "importing $DEBIAN_IMAGE from cached $DEBIAN_TARBALL"
    how="imported from cached $DEBIAN_TARBALL"
  else
    mirror=$(debian_mirror)
    log "debootstrapping bookworm from $mirror (30-120s; log: $DEBOOTSTRAP_LOG)"
    t0=$SECONDS
    root=$(mktemp -d "$CACHE_DIR/debootstrap.XXXXXX")
    TMP_DIRS+=("$root")
    printf '\n==== %s debootstrap from %s ====\n' "$(date -Is)" "$mirror" >>"$DEBOOTSTRAP_LOG"
    if ! debootstrap --variant=minbase --include="$DEBIAN_INCLUDE" bookworm "$root" "$mirror" \
      >>"$DEBOOTSTRAP_LOG" 2>&1 </dev/null; then
      show_tail "$DEBOOTSTRAP_LOG" 40
      die "debootstrap from $mirror failed"
    fi
    # Drop package caches/lists: they are only dead weight in the image.
    rm -rf "${root:?}"/var/lib/apt/lists/* "${root:?}"/var/cache/apt/*.bin \
      "${root:?}"/var/cache/apt/archives/*.deb "${root:?}"/var/log/*.log "${root:?}"/debootstrap
    mkdir -p "$root/var/lib/apt/lists/partial"
    tar -C "$root" --numeric-owner -cf "$DEBIAN_TARBALL.tmp" .
    mv -f "$DEBIAN_TARBALL.tmp" "$DEBIAN_TARBALL"
    rm -rf --one-file-system "$root"
    how="debootstrapped from $mirror in $((SECONDS - t0))s, tarball cached at $DEBIAN_TARBALL"
  fi
  docker import --change 'CMD ["/lib/systemd/systemd"]' --change "LABEL $LABEL_KEY=$DEBIAN_RECIPE" \
    -m "skiff-core test harness: $DEBIAN_RECIPE" - "$DEBIAN_IMAGE" <"$DEBIAN_TARBALL" >/dev/null
  if ! verify_debian_image; then
    docker image rm -f "$DEBIAN_IMAGE" >/dev/null 2>&1 || true
    rm -f "$DEBIAN_TARBALL"
    die "$DEBIAN_IMAGE lacks /lib/systemd/systemd, /usr/lib/openssh/sftp-server, sudo or bash; removed it and the cached tarball, rerun to rebuild"
  fi
  note "image: built $DEBIAN_IMAGE ($how)"
fi
}

if wants base-images; then
  provision_busybox
  provision_debian
fi

###############################################################################
# 5. Device image base: Debian + OpenSSH (for Dockerfile.test, the end-to-end "device")
###############################################################################
# skiff-core-test/debian-sshd:bookworm = the cached Debian tarball (or the debian-systemd image's
# filesystem) plus openssh-server, openssh-client and curl, installed with apt-get in a chroot of
# an extracted copy (Debian's archive is reachable from this machine; the image build that uses
# it, Dockerfile.test, needs no network). Services are never started (policy-rc.d) and the host
# keys apt generated are removed, so each device container generates its own.
readonly SSHD_IMAGE=skiff-core-test/debian-sshd:bookworm
readonly SSHD_RECIPE=debian-sshd-bookworm-v1
readonly SSHD_PACKAGES="openssh-server openssh-client curl"

build_sshd_image() {
  local state root how cid
  state=$(image_state "$SSHD_IMAGE" "$SSHD_RECIPE")
  if [[ "$state" == current ]]; then
    note "image: $SSHD_IMAGE present"
    return 0
  fi
  [[ "$state" == stale ]] && log "$SSHD_IMAGE exists but lacks label $LABEL_KEY=$SSHD_RECIPE; rebuilding"
  local t0=$SECONDS
  root=$(mktemp -d "$CACHE_DIR/sshd-root.XXXXXX")
  TMP_DIRS+=("$root")
  if [[ -s "$DEBIAN_TARBALL" ]]; then
    tar -C "$root" --numeric-owner -xf "$DEBIAN_TARBALL"
    how="from $DEBIAN_TARBALL"
  else
    log "no cached tarball; exporting the filesystem of $DEBIAN_IMAGE"
    cid=$(docker create "$DEBIAN_IMAGE" /bin/true)
    if ! docker export "$cid" | tar -C "$root" --numeric-owner -xf -; then
      docker rm -f "$cid" >/dev/null 2>&1 || true
      die "exporting $DEBIAN_IMAGE failed"
    fi
    docker rm -f "$cid" >/dev/null 2>&1 || true
    how="from the filesystem of $DEBIAN_IMAGE"
  fi
  # No service may start inside the chroot; name resolution as on this machine.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  rm -f "$root/etc/resolv.conf"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  log "installing $SSHD_PACKAGES into a copy of Debian for $SSHD_IMAGE (log: $APT_LOG)"
  printf '\n==== %s %s: apt-get in chroot %s ====\n' "$(date -Is)" "$SSHD_IMAGE" "$root" >>"$APT_LOG"
  # A private mount namespace: /proc and /dev vanish with it, whatever happens here.
  if ! unshare --mount --propagation private /bin/sh -c '
      set -e
      mount -t proc proc "$1/proc"
      mount --rbind /dev "$1/dev"
      chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        apt-get update -q
      chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends $2
    ' sh "$root" "$SSHD_PACKAGES" >>"$APT_LOG" 2>&1 </dev/null; then
    show_tail "$APT_LOG" 40
    die "installing $SSHD_PACKAGES for $SSHD_IMAGE failed"
  fi
  rm -f "$root/usr/sbin/policy-rc.d" "$root"/etc/ssh/ssh_host_*
  : >"$root/etc/resolv.conf"
  rm -rf "${root:?}"/var/lib/apt/lists/* "${root:?}"/var/cache/apt/*.bin \
    "${root:?}"/var/cache/apt/archives/*.deb "${root:?}"/var/log/apt/* "${root:?}"/var/log/*.log
  mkdir -p "$root/var/lib/apt/lists/partial" "$root/run/sshd"
  tar -C "$root" --numeric-owner -c . |
    docker import --change 'CMD ["/usr/sbin/sshd", "-D", "-e"]' --change "LABEL $LABEL_KEY=$SSHD_RECIPE" \
      -m "skiff-core test harness: $SSHD_RECIPE" - "$SSHD_IMAGE" >/dev/null
  rm -rf --one-file-system "$root"
  if ! docker run --rm --network none --entrypoint /bin/sh "$SSHD_IMAGE" -c \
    'test -x /usr/sbin/sshd && test -x /usr/bin/ssh-keygen && test -x /usr/lib/openssh/sftp-server &&
     test -x /usr/bin/curl && ! ls /etc/ssh/ssh_host_* >/dev/null 2>&1'; then
    docker image rm -f "$SSHD_IMAGE" >/dev/null 2>&1 || true
    die "$SSHD_IMAGE failed its smoke test (sshd, ssh-keygen, sftp-server, curl; no host keys); removed it"
  fi
  note "image: built $SSHD_IMAGE ($how, in $((SECONDS - t0))s)"
}
wants device && build_sshd_image

###############################################################################
printf '[provision] done in %ss:\n' "$((SECONDS - START_SECONDS))" >&2
printf '[provision]   engine %s on %s\n' "$ENGINE_VERSION" "$DOCKER_SOCK" >&2
for line in "${SUMMARY[@]}"; do
  printf '[provision]   %s\n' "$line" >&2
done
