#!/usr/bin/env bash
# rclone crypt over an S3 bucket on Ceph RGW (rclone's s3 backend, provider = Ceph), mounted with
# --vfs-cache-mode writes and --vfs-write-back 10ms, as rclone-writes.sh does over WebDAV.
# The nearest peer of edfs-s3.sh. Port 18035 = rc of the mount.
set -u
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/s3-common.sh"
ACTION=$1 WORK=$2
MNT=$WORK/mnt CONF=$WORK/rclone.conf RC=127.0.0.1:18035
BUCKET=rclone-$(basename "$WORK" | tr 'A-Z_.' 'a-z--')
start_mount() {
  mkdir -p "$MNT" "$WORK/cache"
  rclone mount crypt: "$MNT" --config "$CONF" --cache-dir "$WORK/cache" --vfs-cache-mode writes --vfs-write-back 10ms \
    --rc --rc-addr "$RC" --rc-no-auth > "$WORK/mount.log" 2>&1 &
  local pid=$!
  wait_mounted "$MNT" 30 || { cat "$WORK/mount.log" >&2; return 1; }
  printf '%s\n%s\n' "$pid" "" > "$WORK/pids"
}
settle() {
  local n=0 s t ok=0
  while :; do
    s=$(rclone rc --url "http://$RC/" vfs/stats 2>/dev/null | jq -r '.diskCache | ((.uploadsInProgress // 0) + (.uploadsQueued // 0))' 2>/dev/null)
    t=$(rclone rc --url "http://$RC/" core/stats 2>/dev/null | jq -r '(.transferring // []) | length' 2>/dev/null)
    if [ "$s" = "0" ] && [ "$t" = "0" ]; then ok=$((ok + 1)); else ok=0; fi
    [ "$ok" -ge 3 ] && return 0
    n=$((n + 1)); [ "$n" -gt 6000 ] && { echo "settle timed out" >&2; return 1; }
    sleep 0.1
  done
}
stop_mount() { fuse_umount "$MNT"; stop_pid "$(head -1 "$WORK/pids" 2>/dev/null)" 20; }
case $ACTION in
  up)
    s3_conf "$CONF"
    printf '[crypt]\ntype = crypt\nremote = rgw:%s\npassword = %s\npassword2 = %s\n' "$BUCKET" \
      "$(rclone obscure bench-password-not-secret)" "$(rclone obscure bench-salt-not-secret)" >> "$CONF"
    rclone mkdir "rgw:$BUCKET" --config "$CONF" || exit 1
    start_mount ;;
  settle) settle ;;
  remount) settle; stop_mount; rm -rf "$WORK/cache"; start_mount ;;
  down) stop_mount; rclone purge "rgw:$BUCKET" --config "$CONF" > /dev/null 2>&1 ;;
  *) echo "usage: $0 up|settle|remount|down WORK" >&2; exit 2 ;;
esac
