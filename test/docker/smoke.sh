#!/usr/bin/env bash
# Docker smoke stage (issue 6), part of `npm test`: builds the image and checks the compose cluster
# from the host with the real CLI.
#
#  1. a private Docker engine (test/docker/engine.sh: own socket and dirs, no iptables, no bridge)
#  2. the base image node:20-bookworm-slim built offline (test/docker/base-image.sh, cached in
#     /var/cache/edfs-ci), then the project image from ./Dockerfile
#  3. docker-compose.yml + test/docker/compose.ci.yml: dfs1..dfs4 healthy; `edfs init` against them;
#     put a 20 MiB file and a small tree; `docker kill` one server; get all back byte-identical;
#     restarted servers keep id and data; `down` + `up` keeps everything
#  4. the compose `mount` service (/dev/fuse, SYS_ADMIN, rshared bind): files read inside the
#     container and on the host through the bind mount, a file written through the mount
#  5. bad input: no user configured, user without password, /data owned by another uid
#  6. teardown in a trap, by PID: no container, image store, firewall rule or mount left behind
#
# Prints `docker: N passed, N failed` as its last line; exits 1 on any failure. Needs root and
# Linux; installs docker.io, docker-compose and debootstrap from Debian's packages when missing.
# When that is impossible it skips with a message, or fails under CI=true.
# EDFS_DOCKER_SMOKE=skip skips it outside CI. EDFS_DOCKER_KEEP=1 keeps the work dir for debugging.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$REPO/test/docker"
# shellcheck source=test/docker/engine.sh
. "$HERE/engine.sh"
# shellcheck source=test/docker/base-image.sh
. "$HERE/base-image.sh"

T0=$SECONDS
PASSED=0
FAILED=0
WORK=
ENGINE=
PROJECT="edfs-ci-$$"
IMAGE="edfs:ci-smoke-$$"
DOCKER=/usr/bin/docker
BUDGET=${EDFS_DOCKER_BUDGET:-540}   # seconds; the stage must stay under 10 minutes
SUMMARY_DONE=

say() { echo "docker: $*"; }
log() { echo "docker:   $*" >&2; }
ok() { PASSED=$((PASSED + 1)); say "ok - $*"; }
not_ok() { FAILED=$((FAILED + 1)); say "FAIL - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
elapsed() { echo $((SECONDS - T0)); }

summary() {
  [ -z "$SUMMARY_DONE" ] || return 0
  SUMMARY_DONE=1
  say "$PASSED passed, $FAILED failed"
}

# Cannot run here: fail under CI, skip otherwise.
cannot_run() {
  if [ "${CI:-}" = true ]; then
    say "ERROR: the Docker stage cannot run on this machine: $*"
    say "(CI=true: this is a failure; outside CI the stage would be skipped)"
    FAILED=$((FAILED + 1))
    teardown
    summary
    exit 1
  fi
  say "SKIPPED: $* (set CI=true to make this a failure)"
  teardown
  summary
  exit 0
}

teardown() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    if [ -n "$ENGINE" ] && [ -S "$ENGINE/docker.sock" ]; then
      timeout 60 docker-compose "${DC_ARGS[@]}" --profile mount down -v --remove-orphans -t 5 >>"$WORK/teardown.log" 2>&1 || true
    fi
    engine_stop "$ENGINE" 2>>"$WORK/teardown.log"
    # The host side of the rshared bind mount (and anything that propagated into it).
    local m
    m=$(awk -v d="$WORK/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r)
    if [ -n "$m" ]; then
      while read -r t; do [ -z "$t" ] || umount "$t" 2>/dev/null || umount -l "$t" 2>/dev/null || true; done <<<"$m"
    fi
    if awk -v d="$WORK/" 'index($2, d) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
      not_ok "teardown: mounts left under $WORK"
    fi
    if [ -n "$ENGINE" ] && [ -e "$ENGINE" ]; then not_ok "teardown: engine directory $ENGINE left behind"; fi
    if [ "${EDFS_DOCKER_KEEP:-}" = 1 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  fi
  return $rc
}

on_exit() {
  teardown
  say "stage took $(elapsed) s"
  summary
  [ "$FAILED" = 0 ] || exit 1
}
on_signal() { not_ok "interrupted by a signal"; exit 1; }

# --- preflight ----------------------------------------------------------------------------------
if [ "${EDFS_DOCKER_SMOKE:-}" = skip ] && [ "${CI:-}" != true ]; then
  say "SKIPPED: EDFS_DOCKER_SMOKE=skip"
  summary
  exit 0
fi
[ "$(uname -s)" = Linux ] || cannot_run "not Linux"
[ "$(id -u)" = 0 ] || cannot_run "not root (a private Docker engine needs root)"

need_pkgs=()
command -v dockerd >/dev/null 2>&1 && [ -x /usr/bin/docker ] || need_pkgs+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || need_pkgs+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  say "installing ${need_pkgs[*]} from Debian's packages"
  # Services must not start (docker.io's postinst would start a default dockerd, which changes
  # the host's firewall and forwarding): a policy-rc.d that refuses, only if none is there.
  policy_created=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d && policy_created=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt_ok=
  if apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/tmp/edfs-docker-apt.log 2>&1; then apt_ok=1
  elif apt-get update -qq >>/tmp/edfs-docker-apt.log 2>&1 && apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >>/tmp/edfs-docker-apt.log 2>&1; then apt_ok=1
  fi
  [ -z "$policy_created" ] || rm -f /usr/sbin/policy-rc.d
  [ -n "$apt_ok" ] || { tail -5 /tmp/edfs-docker-apt.log >&2; cannot_run "apt-get install ${need_pkgs[*]} failed (log: /tmp/edfs-docker-apt.log)"; }
  rm -f /tmp/edfs-docker-apt.log
fi
[ -e /dev/fuse ] || cannot_run "no /dev/fuse (the mount check needs it)"

WORK=$(mktemp -d /tmp/edfs-docker-smoke.XXXXXX)
ENGINE="$WORK/engine"
trap on_exit EXIT
trap on_signal INT TERM
DC_ARGS=(--project-directory "$REPO" -p "$PROJECT" -f "$REPO/docker-compose.yml" -f "$HERE/compose.ci.yml")

# --- 1. engine, base image, project image ---------------------------------------------------------
if ! engine_start "$ENGINE"; then cannot_run "the private Docker engine did not start (log above)"; fi
export DOCKER_HOST DOCKER_CONFIG
ok "private engine up ($(elapsed) s)"

if ! base_import; then cannot_run "the offline base image could not be built or imported (log above)"; fi
ok "base image node:20-bookworm-slim ($(elapsed) s)"

dist_fresh() { [ -f "$REPO/dist/src/cli/main.js" ]; }
if ! dist_fresh; then (cd "$REPO" && npm run -s build) >"$WORK/tsc.log" 2>&1 || { cat "$WORK/tsc.log" >&2; }; fi
EDFS() { node "$REPO/bin/edfs" "$@"; }

t=$SECONDS
if timeout 400 "$DOCKER" build --network host -t "$IMAGE" "$REPO" >"$WORK/build.log" 2>&1; then
  size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")
  base=$("$DOCKER" image inspect -f '{{.Size}}' node:20-bookworm-slim)
  ok "image built in $((SECONDS - t)) s: $((size / 1000000)) MB, of which $(((size - base) / 1000000)) MB on top of the base"
else
  not_ok "docker build (last lines of the log below)"
  tail -30 "$WORK/build.log" >&2
  exit 1
fi

# --- 2. the compose cluster -----------------------------------------------------------------------
PW="$WORK/secret/edfs_password"
mkdir -p "$WORK/secret" "$WORK/client" "$WORK/in" "$WORK/out" "$WORK/mnt"
(umask 077; head -c 18 /dev/urandom | base64 >"$PW")
read -r P1 P2 P3 P4 P5 < <(node -e '
  const net = require("node:net"); const ports = []; const socks = []
  ;(async () => { for (let i = 0; i < 5; i++) { const s = net.createServer(); await new Promise((r) => s.listen(0, "127.0.0.1", r)); socks.push(s); ports.push(s.address().port) }
    socks.forEach((s) => s.close()); console.log(ports.join(" ")) })()')
export EDFS_IMAGE="$IMAGE" EDFS_USER=smoke EDFS_PASSWORD_SECRET="$PW" EDFS_MOUNT_DIR="$WORK/mnt"
export EDFS_CI_PORT1=$P1 EDFS_CI_PORT2=$P2 EDFS_CI_PORT3=$P3 EDFS_CI_PORT4=$P4
URLS="http://127.0.0.1:$P1,http://127.0.0.1:$P2,http://127.0.0.1:$P3,http://127.0.0.1:$P4"
# docker-compose.yml as compose resolves it with the CI override, minus the published ports:
# docker-py refuses port bindings with network_mode host (the private engine has no bridge).
if docker-compose "${DC_ARGS[@]}" config >"$WORK/compose.resolved.yml" 2>"$WORK/compose-config.log" &&
  python3 -c '
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for svc in doc["services"].values():
    svc.pop("ports", None)
yaml.safe_dump(doc, open(sys.argv[2], "w"), default_flow_style=False, sort_keys=False)
' "$WORK/compose.resolved.yml" "$WORK/compose.ci-host.yml" 2>>"$WORK/compose-config.log"; then
  ok "docker-compose.yml + compose.ci.yml: valid for docker-compose $(docker-compose version --short 2>/dev/null)"
else
  not_ok "docker-compose config"; cat "$WORK/compose-config.log" >&2; exit 1
fi
DC_ARGS=(--project-directory "$REPO" -p "$PROJECT" -f "$WORK/compose.ci-host.yml")
dc() { timeout 120 docker-compose "${DC_ARGS[@]}" "$@"; }
cid() { dc ps -q "$1" 2>/dev/null; }

health_id() { node -e '
  fetch(process.argv[1] + "/v1/health", { signal: AbortSignal.timeout(2000) }).then((r) => r.json()).then((j) => console.log(j.id), () => process.exit(1))' "$1"; }
# wait_ids: waits (max 60 s) until all four answer /v1/health; prints their ids.
wait_ids() {
  local i p ids
  for i in $(seq 1 120); do
    ids=()
    for p in $P1 $P2 $P3 $P4; do ids+=("$(health_id "http://127.0.0.1:$p" 2>/dev/null)"); done
    if [ -n "${ids[0]}" ] && [ -n "${ids[1]}" ] && [ -n "${ids[2]}" ] && [ -n "${ids[3]}" ]; then echo "${ids[*]}"; return 0; fi
    sleep 0.5
  done
  return 1
}
wait_healthy() { # docker's own HEALTHCHECK says healthy (max 60 s)
  local c=$1 i s
  for i in $(seq 1 60); do
    s=$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$c" 2>/dev/null)
    [ "$s" = healthy ] && return 0
    sleep 1
  done
  return 1
}
show_logs() { local s; for s in "$@"; do log "--- logs of $s"; "$DOCKER" logs --tail 20 "$(cid "$s")" 2>&1 | sed 's/^/docker:     /' >&2; done; }

if dc up -d --no-build dfs1 dfs2 dfs3 dfs4 >"$WORK/up.log" 2>&1 && IDS=$(wait_ids); then
  ok "compose: dfs1..dfs4 answer /v1/health ($(elapsed) s)"
else
  not_ok "compose: dfs1..dfs4 up"; cat "$WORK/up.log" >&2; show_logs dfs1 dfs2 dfs3 dfs4; exit 1
fi
all_healthy() { local s; for s in dfs1 dfs2 dfs3 dfs4; do wait_healthy "$(cid $s)" || return 1; done; }
check "HEALTHCHECK reports all four healthy" all_healthy
runs_as_edfs() { "$DOCKER" top "$(cid dfs1)" -eo pid,uid,args | awk '/edfs server/ { print $2 }' | grep -qx 10001; }
check "the server process runs as uid 10001 (edfs)" runs_as_edfs
distinct_ids() { [ "$(tr ' ' '\n' <<<"$IDS" | sort -u | wc -l)" = 4 ]; }
check "four distinct server ids" distinct_ids

# --- 3. the real CLI from the host --------------------------------------------------------------
export EDFS_CONFIG="$WORK/client/config.json"
cli() { timeout 120 node "$REPO/bin/edfs" "$@" --password-stdin <"$PW"; }
clilog() { echo "+ edfs $*" >>"$WORK/cli.log"; cli "$@" >>"$WORK/cli.log" 2>&1; }
quiet() { "$@" >/dev/null; }
head -c $((20 * 1024 * 1024)) /dev/urandom >"$WORK/in/big.bin"
mkdir -p "$WORK/in/tree/sub/deeper" "$WORK/in/tree/empty-dir"
echo "hello from the docker smoke test" >"$WORK/in/tree/hello.txt"
: >"$WORK/in/tree/empty.txt"
head -c 300000 /dev/urandom >"$WORK/in/tree/sub/random.bin"
printf 'a file with a space in its name\n' >"$WORK/in/tree/sub/with space.txt"
seq 1 20000 >"$WORK/in/tree/sub/deeper/numbers.txt"

check "edfs init against the four containers" clilog init --servers "$URLS" --user smoke
check "edfs put a 20 MiB file" clilog put -q "$WORK/in/big.bin" /big.bin
check "edfs put a small tree" clilog put -q "$WORK/in/tree" /tree
blobs_of() { "$DOCKER" exec "$(cid "$1")" sh -c 'find /data/users -type f | wc -l'; }
DFS2_BLOBS=$(blobs_of dfs2)

DFS2=$(cid dfs2)
check "docker kill dfs2" quiet "$DOCKER" kill "$DFS2"
get_all() {
  rm -rf "$WORK/out/$1" && mkdir -p "$WORK/out/$1" &&
    clilog get -q /big.bin "$WORK/out/$1/big.bin" &&
    clilog get -q /tree "$WORK/out/$1/tree" &&
    cmp -s "$WORK/in/big.bin" "$WORK/out/$1/big.bin" &&
    diff -r "$WORK/in/tree" "$WORK/out/$1/tree" >&2
}
check "with dfs2 killed: get everything back byte-identical" get_all killed
check "edfs ls lists the files" sh -c "timeout 60 node '$REPO/bin/edfs' ls -R / --password-stdin <'$PW' 2>>'$WORK/cli.log' | grep -q numbers.txt"

restarted_same() {
  "$DOCKER" start "$DFS2" >/dev/null && local ids && ids=$(wait_ids) && [ "$ids" = "$IDS" ] && [ "$(blobs_of dfs2)" = "$DFS2_BLOBS" ]
}
check "dfs2 restarted: same id, same data ($DFS2_BLOBS files)" restarted_same
stop_clean() {
  local c t rc
  c=$(cid dfs3); t=$SECONDS
  "$DOCKER" stop -t 20 "$c" >/dev/null || return 1
  rc=$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$c")
  log "dfs3 stopped in $((SECONDS - t)) s with exit code $rc"
  [ "$rc" = 0 ] && [ $((SECONDS - t)) -lt 10 ] && "$DOCKER" start "$c" >/dev/null && [ "$(wait_ids)" = "$IDS" ]
}
check "SIGTERM (docker stop) stops a server cleanly and fast" stop_clean

# --- 4. the mount in a container -------------------------------------------------------------------
# The host end of the rshared bind mount must be a shared mount.
mount --bind "$WORK/mnt" "$WORK/mnt" && mount --make-shared "$WORK/mnt"
MNT_UP=
mounted_in_container() {
  local i c
  for i in $(seq 1 90); do
    c=$(cid mount)
    if [ -n "$c" ] && "$DOCKER" exec "$c" grep -q ' /mnt/dfs/volume fuse' /proc/mounts 2>/dev/null; then return 0; fi
    if [ -n "$c" ] && [ "$("$DOCKER" inspect -f '{{.State.Running}}' "$c" 2>/dev/null)" = false ]; then return 1; fi
    sleep 1
  done
  return 1
}
if dc --profile mount up -d --no-build --no-deps mount >>"$WORK/up.log" 2>&1 && mounted_in_container; then
  MNT_UP=1
  ok "compose mount service: FUSE mounted in the container ($(elapsed) s)"
else
  not_ok "compose mount service: FUSE mount in the container"; show_logs mount
fi
if [ -n "$MNT_UP" ]; then
  MC=$(cid mount)
  read_in_container() {
    [ "$("$DOCKER" exec "$MC" cat /mnt/dfs/volume/tree/hello.txt)" = "$(cat "$WORK/in/tree/hello.txt")" ] &&
      [ "$("$DOCKER" exec "$MC" sha256sum /mnt/dfs/volume/big.bin | cut -d' ' -f1)" = "$(sha256sum "$WORK/in/big.bin" | cut -d' ' -f1)" ]
  }
  check "files read through the mount inside the container" read_in_container
  check "HEALTHCHECK of the mount container says healthy" wait_healthy "$MC"
  on_host() { cmp -s "$WORK/mnt/volume/tree/sub/random.bin" "$WORK/in/tree/sub/random.bin" && diff -r "$WORK/in/tree" "$WORK/mnt/volume/tree" >&2; }
  check "the host sees the container's mount (rshared bind)" on_host
  check "a file written through the mount" "$DOCKER" exec "$MC" sh -c 'seq 1 1000 > /mnt/dfs/volume/from-container.txt'
  mount_stop() {
    dc --profile mount stop -t 60 mount >>"$WORK/up.log" 2>&1 &&
      [ "$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$MC")" = 0 ] &&
      ! grep -q " $WORK/mnt/volume " /proc/self/mounts
  }
  check "mount container stops cleanly (exit 0) and the host mount is gone" mount_stop
  written() { clilog get -q /from-container.txt "$WORK/out/from-container.txt" && [ "$(cat "$WORK/out/from-container.txt")" = "$(seq 1 1000)" ]; }
  check "the file written in the container is read back from the host" written
fi

# --- 5. down and up again: volumes keep ids and data ----------------------------------------------
down_up() {
  dc --profile mount down -t 20 >>"$WORK/up.log" 2>&1 && dc up -d --no-build dfs1 dfs2 dfs3 dfs4 >>"$WORK/up.log" 2>&1 &&
    [ "$(wait_ids)" = "$IDS" ] && get_all again
}
check "compose down + up: same ids, same data" down_up

# --- 6. TLS: certificate and key from a mounted directory ------------------------------------------
tls_compose_valid() { docker-compose --project-directory "$REPO" -p "$PROJECT" -f "$REPO/docker-compose.yml" -f "$REPO/docker/compose.tls.yml" config -q >&2; }
check "docker-compose.yml + docker/compose.tls.yml: valid" tls_compose_valid
if command -v openssl >/dev/null 2>&1; then
  tls_server() {
    mkdir -p "$WORK/certs" &&
      openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$WORK/certs/server.key" -out "$WORK/certs/server.crt" >/dev/null 2>&1 &&
      chgrp 10001 "$WORK/certs/server.key" && chmod 0640 "$WORK/certs/server.key" && chmod 0755 "$WORK/certs" || return 1
    local c i
    c=$("$DOCKER" run -d --init --network host -v "$WORK/certs:/certs:ro" -v "$PW:/run/secrets/pw:ro" -v "$PROJECT-tls:/data" \
      -e EDFS_TLS_CERT=/certs/server.crt -e EDFS_TLS_KEY=/certs/server.key -e EDFS_HOST=127.0.0.1 -e EDFS_PORT="$P5" \
      -e EDFS_USER=smoke -e EDFS_PASSWORD_FILE=/run/secrets/pw "$IMAGE") || return 1
    for i in $(seq 1 60); do
      NODE_EXTRA_CA_CERTS="$WORK/certs/server.crt" health_id "https://127.0.0.1:$P5" >/dev/null 2>&1 && break
      sleep 0.5
    done
    NODE_EXTRA_CA_CERTS="$WORK/certs/server.crt" health_id "https://127.0.0.1:$P5" >/dev/null && wait_healthy "$c" ||
      { "$DOCKER" logs "$c" 2>&1 | tail -5 >&2; return 1; }
  }
  check "TLS: a server with certificate and key from a mounted directory answers https, healthy" tls_server
else
  say "note: no openssl on this machine: the TLS check is left out"
fi

# --- 7. bad input ----------------------------------------------------------------------------------
bad_run() { # bad_run NAME EXPECTED_TEXT docker-run-args...: exits non-zero, within 30 s, saying EXPECTED_TEXT
  local name=$1 want=$2; shift 2
  timeout 30 "$DOCKER" run --rm --network host "$@" >"$WORK/bad-$name.log" 2>&1
  local rc=$?
  if [ $rc = 0 ] || [ $rc = 124 ] || ! grep -q -- "$want" "$WORK/bad-$name.log"; then
    log "exit $rc; output:"; sed 's/^/docker:     /' "$WORK/bad-$name.log" >&2; return 1
  fi
  log "$(grep -m1 'error' "$WORK/bad-$name.log")"
}
check "no user configured at first start: exits with a clear message" \
  bad_run nouser "no user configured" -v "$PROJECT-bad1:/data" "$IMAGE"
check "user without password: exits with a clear message" \
  bad_run nopw "no password" -e EDFS_USER=smoke -v "$PROJECT-bad2:/data" "$IMAGE"
"$DOCKER" run --rm -v "$PROJECT-bad3:/data" --entrypoint sh "$IMAGE" -c 'touch /data/server-id && chown -R 4242:4242 /data' >/dev/null 2>&1
check "/data owned by another uid: a clear error naming the fix" \
  bad_run baduid "chown -R 10001:10001" -e EDFS_USER=smoke -e EDFS_PASSWORD=x -e EDFS_PORT="$P1" -v "$PROJECT-bad3:/data" "$IMAGE"
check "a password file that is missing: a clear error" \
  bad_run nofile "EDFS_PASSWORD_FILE=/nope is not a readable file" -e EDFS_USER=smoke -e EDFS_PASSWORD_FILE=/nope -v "$PROJECT-bad4:/data" "$IMAGE"
mkdir -p "$WORK/missing-secret"
check "a secret that older compose mounted as a directory (host file missing): a clear error naming the file to create" \
  bad_run secretdir "is a directory, not a file" -e EDFS_USER=smoke -e EDFS_PASSWORD_FILE=/run/secrets/edfs_password \
  -v "$WORK/missing-secret:/run/secrets/edfs_password:ro" -v "$PROJECT-bad5:/data" "$IMAGE"
check "mount without /dev/fuse: a clear error naming the docker options" \
  bad_run nofuse "--device /dev/fuse --cap-add SYS_ADMIN" "$IMAGE" mount /mnt/dfs/volume --foreground

[ "$(elapsed)" -lt "$BUDGET" ] || not_ok "the stage took $(elapsed) s (budget $BUDGET s)"
exit 0
