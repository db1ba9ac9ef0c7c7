#!/usr/bin/env bash
# Installs what edfs needs on a Debian/Ubuntu machine with Node 20: libfuse 2 and the fuse tools
# (for mounts), then the npm packages. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -e /usr/lib/x86_64-linux-gnu/libfuse.so.2 ] || ldconfig -p 2>/dev/null | grep -q 'libfuse.so.2 ' || need_apt+=(libfuse2)
command -v fusermount >/dev/null 2>&1 || need_apt+=(fuse)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "edfs setup: please install ${need_apt[*]} (as root: apt-get install -y ${need_apt[*]})" >&2
    exit 1
  fi
  echo "edfs setup: installing ${need_apt[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${need_apt[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"; }
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "edfs setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi
