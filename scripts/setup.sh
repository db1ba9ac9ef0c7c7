#!/usr/bin/env bash
# Installs what edfs needs on a Debian/Ubuntu machine with Node 20: libfuse 2 and the fuse tools
# (for mounts), python3/make/g++ (to build the patched fuse-native addon), then the npm packages.
# --test adds what the test suite runs (sqlite3, git, openssl, python3, attr, Ceph for a real S3), --bench what the benchmark runs
# (fio). Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- fuse-native: our patched copy --------------------------------------------------------------
# patches/fuse-native+2.2.6.patch (applied by patch-package) adds the big_writes option and fixes
# utimens, whose bug is in the C addon (mtime was never passed): the addon is rebuilt from the
# patched source with node-gyp (python3, make, g++; node's headers from the local install when
# present, else node-gyp downloads them). Runs from `postinstall` and from this script; it does
# nothing when the patch is applied and the addon was built from the current source (a stamp).
ensure_fuse_native() {
  local dir=node_modules/fuse-native
  [ -d "$dir" ] || return 0
  if ! grep -q 'EDFS_PATCH' "$dir/index.js"; then
    if [ ! -x node_modules/.bin/patch-package ]; then
      echo "edfs setup: warning: fuse-native is not patched (patch-package, a devDependency, is not installed);" >&2
      echo "edfs setup: warning: \`edfs mount\` will refuse to run. Install with dev dependencies, or copy node_modules from a full install." >&2
      return 0
    fi
    node_modules/.bin/patch-package --error-on-fail >/dev/null
    grep -q 'EDFS_PATCH' "$dir/index.js" || { echo "edfs setup: patching fuse-native failed" >&2; exit 1; }
  fi
  local want stamp="$dir/build/edfs-native.stamp"
  want=$(sha256sum "$dir/fuse-native.c" | cut -d' ' -f1)
  if [ -f "$dir/build/Release/fuse.node" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  local gyp=${npm_config_node_gyp:-}
  if [ -z "$gyp" ] || [ ! -f "$gyp" ]; then
    gyp="$(npm root -g 2>/dev/null)/npm/node_modules/node-gyp/bin/node-gyp.js"
    [ -f "$gyp" ] || gyp=node_modules/node-gyp/bin/node-gyp.js
  fi
  [ -f "$gyp" ] || { echo "edfs setup: node-gyp not found (it comes with npm); cannot build fuse-native" >&2; exit 1; }
  gyp=$(realpath "$gyp")
  local args=(rebuild)
  local prefix
  prefix=$(dirname "$(dirname "$(node -p process.execPath)")")
  if [ -z "${npm_config_nodedir:-}" ] && [ -f "$prefix/include/node/node_api.h" ]; then args+=("--nodedir=$prefix"); fi
  echo "edfs setup: building the patched fuse-native addon"
  local log
  log=$(mktemp)
  if ! (cd "$dir" && node "$gyp" "${args[@]}") >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    echo "edfs setup: building fuse-native failed (it needs python3, make and g++)" >&2
    exit 1
  fi
  rm -f "$log"
  grep -q edfs_patch "$dir/build/Release/fuse.node" || { echo "edfs setup: the built fuse-native addon lacks the edfs patch" >&2; exit 1; }
  echo "$want" >"$stamp"
}

if [ "${1:-}" = "--fuse-native" ]; then
  ensure_fuse_native
  exit 0
fi

# A fuse-native patched at an older level needs pristine sources again (patch-package applies a
# patch to the package as published): npm ci gives them, and its postinstall patches and rebuilds.
fuse_patch_outdated() {
  local index=node_modules/fuse-native/index.js level
  level=$(sed -n 's/^+Fuse.EDFS_PATCH = \([0-9]*\)$/\1/p' patches/fuse-native+*.patch)
  [ -n "$level" ] && [ -f "$index" ] && grep -q 'EDFS_PATCH' "$index" && ! grep -q "^Fuse.EDFS_PATCH = $level\$" "$index"
}

# npm ci when node_modules is missing, older than the lock file, or holds an outdated patch.
npm_ci=no
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || fuse_patch_outdated; then npm_ci=yes; fi

need_apt=()
[ -e /usr/lib/x86_64-linux-gnu/libfuse.so.2 ] || ldconfig -p 2>/dev/null | grep -q 'libfuse.so.2 ' || need_apt+=(libfuse2)
command -v fusermount >/dev/null 2>&1 || need_apt+=(fuse)
tools=()
# The patched addon is built from source: on a fresh install, or when it was never built here.
if [ $npm_ci = yes ] || [ ! -f node_modules/fuse-native/build/edfs-native.stamp ]; then tools+=(python3 make g++); fi
case "${1:-}" in
  --test) tools+=(sqlite3 git openssl python3) ;;
  --bench) tools+=(fio sqlite3) ;;
esac
for tool in "${tools[@]}"; do command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool"); done
# getfattr/setfattr (the xattr tests) come in Debian's package attr.
if [ "${1:-}" = --test ] && ! command -v setfattr >/dev/null 2>&1; then need_apt+=(attr); fi
# A one-node Ceph (monitor, memstore OSD, radosgw) is the real S3 store of test/e2e/s3.test.ts.
if [ "${1:-}" = --test ] && ! { command -v radosgw && command -v ceph-mon && command -v ceph-osd && command -v ceph; } >/dev/null 2>&1; then
  need_apt+=(ceph-mon ceph-osd radosgw ceph-common)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "edfs setup: please install ${need_apt[*]} (as root: apt-get install -y ${need_apt[*]})" >&2
    exit 1
  fi
  echo "edfs setup: installing ${need_apt[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_apt[@]}"; }
fi

if [ $npm_ci = yes ]; then
  echo "edfs setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

ensure_fuse_native
