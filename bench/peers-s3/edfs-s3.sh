#!/usr/bin/env bash
# edfs on one S3 bucket on Ceph RGW (R = 1: the store keeps its own copies), mounted at WORK/mnt.
# EDFS names the CLI. The peer: rclone-s3.sh on the same RGW.
set -u
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/s3-common.sh"
ACTION=$1 WORK=$2
MNT=$WORK/mnt EDFS=${EDFS:-edfs}
BUCKET=edfs-$(basename "$WORK" | tr 'A-Z_.' 'a-z--')
export EDFS_CONFIG=$WORK/config.json EDFS_PASSWORD=bench-password-not-secret XDG_CACHE_HOME=$WORK/cache XDG_STATE_HOME=$WORK/state
mount_fs() {
  mkdir -p "$MNT"
  $EDFS mount "$MNT" ${EDFS_MOUNT_OPTS:-} > "$WORK/mount.log" 2>&1 || { cat "$WORK/mount.log" >&2; return 1; }
  wait_mounted "$MNT" 60 || return 1
  printf '%s\n%s\n' "$(pgrep -n -f "mount $MNT" || true)" "" > "$WORK/pids"
}
unmount_fs() { $EDFS umount "$MNT" > /dev/null 2>&1 || fuse_umount "$MNT"; }
case $ACTION in
  up)
    s3_conf "$WORK/rclone.conf"
    rclone mkdir "rgw:$BUCKET" --config "$WORK/rclone.conf" || exit 1
    $EDFS init --servers "s3://$BUCKET/vol?endpoint=$S3_ENDPOINT&path-style=1" --user bench > "$WORK/init.log" 2>&1 || { cat "$WORK/init.log" >&2; exit 1; }
    mount_fs ;;
  settle) $EDFS sync "$MNT" ;;
  remount) unmount_fs; rm -rf "$WORK/cache"; mount_fs ;;
  down) unmount_fs; rclone purge "rgw:$BUCKET" --config "$WORK/rclone.conf" > /dev/null 2>&1 ;;
  *) echo "usage: $0 up|settle|remount|down WORK" >&2; exit 2 ;;
esac
