#!/bin/bash
# Entrypoint of the edfs image: `docker run IMAGE [edfs arguments]`.
#
#   server [options]         run a storage server as user edfs (uid 10001) on /data, port 7001;
#                            at first start, create the user named by EDFS_USER with the password
#                            from EDFS_PASSWORD_FILE (e.g. a secret) or EDFS_PASSWORD
#   server useradd|passwd|userdel NAME ...   manage users (as edfs, --data /data by default)
#   mount MOUNTPOINT ...     the FUSE mount (stays root: needs /dev/fuse and CAP_SYS_ADMIN); runs
#                            `edfs init` first when EDFS_SERVERS is set and no config exists yet
#   any other edfs command   passed to the edfs CLI; a program on PATH (sh, node...) runs as is
#
# Environment: EDFS_DATA (/data), EDFS_HOST (0.0.0.0), EDFS_PORT (7001), EDFS_TLS_CERT and
# EDFS_TLS_KEY (serve HTTPS), EDFS_USER, EDFS_PASSWORD_FILE or EDFS_PASSWORD; for mount also
# EDFS_SERVERS, EDFS_CONFIG, EDFS_CA. Passwords never appear on a command line.
set -euo pipefail

EDFS_UID=10001
EDFS_GID=10001
HEALTH_FILE=/tmp/edfs-health

note() { echo "edfs-docker: $*" >&2; }
die() {
  echo "edfs-docker: error: $1" >&2
  shift
  local line
  for line in "$@"; do echo "edfs-docker:   $line" >&2; done
  exit 78 # EX_CONFIG
}

is_root() { [ "$(id -u)" = 0 ]; }

# Runs a command as the server's user when we are root; as ourselves otherwise (docker run --user).
as_server_user() {
  if is_root; then
    HOME=/home/edfs setpriv --reuid="$EDFS_UID" --regid="$EDFS_GID" --init-groups -- "$@"
  else
    "$@"
  fi
}
server_uid() { if is_root; then echo "$EDFS_UID"; else id -u; fi; }
server_gid() { if is_root; then echo "$EDFS_GID"; else id -g; fi; }

# opt_value NAME ARGS...: the value of --NAME in ARGS (`--NAME V` or `--NAME=V`); status 1 if absent.
opt_value() {
  local name=$1; shift
  while [ $# -gt 0 ]; do
    case "$1" in
      "--$name") [ $# -ge 2 ] && { printf '%s' "$2"; return 0; }; return 1 ;;
      "--$name="*) printf '%s' "${1#--"$name"=}"; return 0 ;;
      --) return 1 ;;
    esac
    shift
  done
  return 1
}
has_opt() { opt_value "$@" >/dev/null; }

# The password for first-start user creation or the mount: from a file (a secret) or the environment.
password_source_check() {
  if [ -n "${EDFS_PASSWORD_FILE:-}" ] && [ -n "${EDFS_PASSWORD:-}" ]; then
    die "both EDFS_PASSWORD_FILE and EDFS_PASSWORD are set; set only one (a secret file is better)"
  fi
  if [ -n "${EDFS_PASSWORD_FILE:-}" ]; then
    # Older compose versions mount a missing secret file as an empty directory they create on the host.
    [ -d "$EDFS_PASSWORD_FILE" ] && die "EDFS_PASSWORD_FILE=$EDFS_PASSWORD_FILE is a directory, not a file: the secret file did not exist on the host when compose started" \
      "on the host: rm -r secrets/edfs_password; mkdir -p secrets && (umask 077; printf '%s' 'a long passphrase' > secrets/edfs_password); then docker compose up -d (see .env.example)"
    [ -r "$EDFS_PASSWORD_FILE" ] || die "EDFS_PASSWORD_FILE=$EDFS_PASSWORD_FILE is not a readable file" \
      "mount the secret (compose: secrets: [edfs_password], file /run/secrets/edfs_password) or fix the path"
    [ -s "$EDFS_PASSWORD_FILE" ] || die "EDFS_PASSWORD_FILE=$EDFS_PASSWORD_FILE is empty"
    return 0
  fi
  [ -n "${EDFS_PASSWORD:-}" ]
}
# Writes the password to stdout (printf is a shell builtin: nothing shows in `ps`).
password_print() {
  if [ -n "${EDFS_PASSWORD_FILE:-}" ]; then cat -- "$EDFS_PASSWORD_FILE"; else printf '%s\n' "$EDFS_PASSWORD"; fi
}

check_data_dir() {
  local data=$1 uid gid owner bad
  uid=$(server_uid); gid=$(server_gid)
  if [ ! -e "$data" ]; then
    is_root && { mkdir -p "$data" && chown "$uid:$gid" "$data" && chmod 0700 "$data"; }
    return 0
  fi
  owner=$(stat -c '%u:%g' "$data")
  local fix=(
    "Fix: give the directory to uid $uid, e.g. for a named volume:"
    "  docker run --rm -v VOLUME:$data --user 0 --entrypoint chown IMAGE -R $uid:$gid $data"
    "or for a bind-mounted host directory: sudo chown -R $uid:$gid HOSTDIR"
  )
  if ! as_server_user test -w "$data" -a -x "$data" -a -r "$data"; then
    die "data directory $data is owned by uid:gid $owner (mode $(stat -c '%a' "$data")) and the server runs as uid $uid, which cannot write to it." "${fix[@]}" \
      "(or run the container as the owner: docker run --user $owner ..., compose: user: \"$owner\")"
  fi
  bad=$(find "$data" -maxdepth 3 ! -user "$uid" -print -quit 2>/dev/null || true)
  if [ -n "$bad" ]; then
    die "$bad (in the data directory) is owned by uid $(stat -c '%u' "$bad"), not by the server's uid $uid." "${fix[@]}"
  fi
}

# Prints "<number of users> <1 if NAME exists, else 0>" from DATA/users.json.
users_state() {
  as_server_user node -e '
    const { readUsersSync } = require("/app/dist/servers")
    const users = readUsersSync(require("node:path").join(process.argv[1], "users.json"))
    console.log(Object.keys(users).length, process.argv[2] && users[process.argv[2]] ? 1 : 0)
  ' "$1" "${2:-}"
}

ensure_user() {
  local data=$1 state count exists
  state=$(users_state "$data" "${EDFS_USER:-}") || die "cannot read the users file $data/users.json (see the message above)"
  read -r count exists <<<"$state"
  if [ -n "${EDFS_USER:-}" ]; then
    if [ "$exists" = 1 ]; then
      note "user $EDFS_USER exists; its password is left unchanged (change it with: docker exec -u edfs CONTAINER edfs server passwd $EDFS_USER --data $data)"
    else
      password_source_check || die "EDFS_USER=$EDFS_USER is set but there is no password for it." \
        "Set EDFS_PASSWORD_FILE to a file holding it (a Docker secret: /run/secrets/NAME), or EDFS_PASSWORD."
      password_print | as_server_user edfs server useradd "$EDFS_USER" --data "$data" --password-stdin \
        || die "could not add user $EDFS_USER (see the message above)"
    fi
  elif [ "$count" = 0 ]; then
    die "no user configured: the server on $data has no users yet, and EDFS_USER is not set." \
      "Set EDFS_USER and EDFS_PASSWORD_FILE (a file, e.g. a Docker secret) or EDFS_PASSWORD; the user is created at first start." \
      "Or add one by hand: docker run --rm -i -v VOLUME:$data IMAGE server useradd NAME --password-stdin"
  fi
}

run_server() {
  local args=("$@") data host port cert key scheme hh
  data=$(opt_value data "${args[@]}") || { data=${EDFS_DATA:-/data}; args+=(--data "$data"); }
  host=$(opt_value host "${args[@]}") || { host=${EDFS_HOST:-0.0.0.0}; args+=(--host "$host"); }
  port=$(opt_value port "${args[@]}") || { port=${EDFS_PORT:-7001}; args+=(--port "$port"); }
  cert=$(opt_value tls-cert "${args[@]}") || { cert=${EDFS_TLS_CERT:-}; [ -z "$cert" ] || args+=(--tls-cert "$cert"); }
  key=$(opt_value tls-key "${args[@]}") || { key=${EDFS_TLS_KEY:-}; [ -z "$key" ] || args+=(--tls-key "$key"); }
  if [ -n "$cert$key" ]; then
    [ -n "$cert" ] && [ -n "$key" ] || die "TLS needs both a certificate and a key (EDFS_TLS_CERT and EDFS_TLS_KEY, or --tls-cert and --tls-key)"
    local f
    for f in "$cert" "$key"; do
      as_server_user test -r "$f" || die "$f is not readable by the server (uid $(server_uid))." \
        "Fix: mount the certificate directory read-only and make the files readable by uid $(server_uid), e.g. chgrp $(server_gid) FILE && chmod 0640 FILE."
    done
  fi
  check_data_dir "$data"
  ensure_user "$data"
  unset EDFS_PASSWORD EDFS_PASSWORD_FILE

  # What the HEALTHCHECK asks (docker/healthcheck.js).
  scheme=http; [ -z "$cert" ] || scheme=https
  case "$host" in 0.0.0.0|::|'[::]'|'') hh=127.0.0.1 ;; *:*) hh="[${host#[}"; hh="${hh%]}]" ;; *) hh=$host ;; esac
  if [ "$port" != 0 ]; then echo "$scheme://$hh:$port/v1/health" >"$HEALTH_FILE"; else rm -f "$HEALTH_FILE"; fi

  if is_root; then
    exec env HOME=/home/edfs setpriv --reuid="$EDFS_UID" --regid="$EDFS_GID" --init-groups --no-new-privs -- edfs server "${args[@]}"
  fi
  exec edfs server "${args[@]}"
}

run_mount() {
  local mountpoint=${1:-}
  [ -e /dev/fuse ] || die "no /dev/fuse in this container: the mount needs it." \
    "docker run --device /dev/fuse --cap-add SYS_ADMIN --security-opt apparmor:unconfined ... IMAGE mount ..." \
    "(compose: devices: [/dev/fuse], cap_add: [SYS_ADMIN], security_opt: [apparmor:unconfined])"
  local config=${EDFS_CONFIG:-$HOME/.config/edfs/config.json}
  if [ ! -e "$config" ] && [ -n "${EDFS_SERVERS:-}" ]; then
    [ -n "${EDFS_USER:-}" ] || die "EDFS_SERVERS is set but EDFS_USER is not: who mounts?"
    password_source_check || die "no password for $EDFS_USER: set EDFS_PASSWORD_FILE (a secret) or EDFS_PASSWORD"
    local init=(init --servers "$EDFS_SERVERS" --user "$EDFS_USER" --config "$config" --password-stdin)
    [ -z "${EDFS_CA:-}" ] || init+=(--ca "$EDFS_CA")
    note "no config at $config yet: edfs init --servers $EDFS_SERVERS --user $EDFS_USER"
    password_print | edfs "${init[@]}" || die "edfs init failed (see the message above)"
  fi
  [ -e "$config" ] || die "no client config at $config." \
    "Set EDFS_SERVERS (comma-separated URLs), EDFS_USER and EDFS_PASSWORD_FILE to create it at start," \
    "or mount a directory holding config.json and its key file and set EDFS_CONFIG to the file."
  export EDFS_CONFIG=$config
  if [ -n "$mountpoint" ] && [ "${mountpoint#-}" = "$mountpoint" ]; then
    mkdir -p "$mountpoint"
    echo "mount:$(readlink -f "$mountpoint")" >"$HEALTH_FILE"
  fi
  # The mount unlocks the volume with the password: from the secret file on its standard input
  # (never on a command line), else EDFS_PASSWORD as the CLI reads it.
  if [ -n "${EDFS_PASSWORD_FILE:-}" ] && ! printf '%s\n' "$@" | grep -qx -- --password-stdin; then
    password_source_check
    local file=$EDFS_PASSWORD_FILE
    unset EDFS_PASSWORD_FILE
    exec edfs mount "$@" --password-stdin <"$file"
  fi
  exec edfs mount "$@"
}

EDFS_COMMANDS=" server init mount umount ls put get rm mkdir mv cat status fsck gc quickstart passwd help "

[ $# -gt 0 ] || set -- server
if [ "$1" = edfs ]; then shift; [ $# -gt 0 ] || set -- --help; fi

case "$1" in
  server)
    shift
    case "${1:-}" in
      useradd|passwd|userdel)
        sub=$1; shift
        has_opt data "$@" || set -- "$@" --data "${EDFS_DATA:-/data}"
        exec_user=(edfs server "$sub" "$@")
        if is_root; then exec env HOME=/home/edfs setpriv --reuid="$EDFS_UID" --regid="$EDFS_GID" --init-groups -- "${exec_user[@]}"; fi
        exec "${exec_user[@]}"
        ;;
      help|-h|--help) exec edfs server --help ;;
      *) run_server "$@" ;;
    esac
    ;;
  mount) shift; run_mount "$@" ;;
  -*) exec edfs "$@" ;;
  *)
    if [[ "$EDFS_COMMANDS" == *" $1 "* ]] || ! command -v "$1" >/dev/null 2>&1; then exec edfs "$@"; fi
    exec "$@"
    ;;
esac
