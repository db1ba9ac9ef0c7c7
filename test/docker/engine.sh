#!/usr/bin/env bash
# A private Docker engine that changes nothing on the host: its own socket, data root, exec root and
# pid file under one directory; no iptables rules, no ip_forward, no default bridge (containers use
# the host's network namespace or none). Sourced by smoke.sh; also usable by hand:
#
#   test/docker/engine.sh start DIR   # prints `export DOCKER_HOST=...` lines to eval
#   test/docker/engine.sh stop DIR    # removes containers, stops the engine by PID, unmounts, rm -rf DIR
#
# Needs root and Debian's docker.io (dockerd 20.10, containerd, runc).

engine_log() { echo "docker-engine: $*" >&2; }

# engine_start DIR: starts dockerd in the background and waits until it answers (max 60 s).
engine_start() {
  local dir=$1
  mkdir -p "$dir/data" "$dir/exec" "$dir/client"
  : >"$dir/dockerd.log"
  # dockerd 20.10 writes a libtrust key to /etc/docker/key.json and creates /run/docker/plugins
  # whatever the flags; note what existed before, so that engine_stop removes only what it created.
  [ -e /etc/docker/key.json ] || touch "$dir/created-key-json"
  [ -e /run/docker ] || touch "$dir/created-run-docker"
  # containerd's shims put their sockets in /run/containerd/s whatever the engine's state dir.
  [ -e /run/containerd ] || touch "$dir/created-run-containerd"
  # The engine runs in its own session (setsid), so a Ctrl-C in the calling terminal reaches only
  # our trap, which stops it in order. Cgroups go under a parent named after the directory, so
  # teardown can remove exactly what this engine created.
  setsid dockerd \
    --host "unix://$dir/docker.sock" \
    --data-root "$dir/data" \
    --exec-root "$dir/exec" \
    --pidfile "$dir/dockerd.pid" \
    --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --bridge=none --userland-proxy=false \
    --cgroup-parent "/$(basename "$dir")" \
    --log-level warn \
    >>"$dir/dockerd.log" 2>&1 </dev/null &
  echo $! >"$dir/dockerd.launcher.pid"
  export DOCKER_HOST="unix://$dir/docker.sock" DOCKER_CONFIG="$dir/client"
  local i
  for i in $(seq 1 120); do
    if [ -S "$dir/docker.sock" ] && /usr/bin/docker version >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$(cat "$dir/dockerd.launcher.pid")" 2>/dev/null; then
      engine_log "dockerd exited at start; its log:"; tail -20 "$dir/dockerd.log" >&2; return 1
    fi
    sleep 0.5
  done
  engine_log "dockerd did not answer within 60 s; its log:"; tail -20 "$dir/dockerd.log" >&2
  return 1
}

# engine_stop DIR: idempotent; safe to call from a trap at any point of engine_start.
engine_stop() {
  local dir=$1 pid i m
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  if [ -S "$dir/docker.sock" ]; then
    local ids
    ids=$(DOCKER_HOST="unix://$dir/docker.sock" timeout 20 /usr/bin/docker ps -aq 2>/dev/null || true)
    [ -z "$ids" ] || DOCKER_HOST="unix://$dir/docker.sock" timeout 60 /usr/bin/docker rm -f $ids >/dev/null 2>&1 || true
  fi
  pid=$(cat "$dir/dockerd.pid" 2>/dev/null || cat "$dir/dockerd.launcher.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then engine_log "dockerd $pid ignored SIGTERM for 30 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  # The engine's own containerd (started by dockerd, pid file under the exec root) normally exits
  # with it; stop it by its PID if it did not.
  for f in "$dir/exec/containerd/containerd.pid"; do
    pid=$(cat "$f" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for i in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  # Unmount whatever is left under DIR (overlay layers, shm, netns), deepest first.
  for i in 1 2 3; do
    m=$(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r)
    [ -n "$m" ] || break
    while read -r t; do [ -z "$t" ] || umount "$t" 2>/dev/null || umount -l "$t" 2>/dev/null || true; done <<<"$m"
  done
  # Cgroup directories created for this engine's containers (cgroup v1 hierarchies or v2).
  local cg name
  name=$(basename "$dir")
  for cg in /sys/fs/cgroup/*/"$name" /sys/fs/cgroup/"$name"; do
    [ -d "$cg" ] || continue
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  [ ! -e "$dir/created-key-json" ] || rm -f /etc/docker/key.json
  [ ! -e "$dir/created-run-docker" ] || rm -rf /run/docker
  # Only when empty (rmdir): another engine's shims may be using it.
  [ ! -e "$dir/created-run-containerd" ] || rmdir /run/containerd/s /run/containerd 2>/dev/null || true
  rm -rf "$dir"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    start)
      [ -n "${2:-}" ] || { echo "usage: $0 start DIR" >&2; exit 2; }
      engine_start "$2"
      echo "export DOCKER_HOST=unix://$2/docker.sock DOCKER_CONFIG=$2/client"
      ;;
    stop) [ -n "${2:-}" ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; engine_stop "$2" ;;
    *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
  esac
fi
