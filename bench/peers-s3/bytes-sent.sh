#!/usr/bin/env bash
# Bytes sent to the store per byte written: 1 GiB written with dd conv=fsync, then settled.
# edfs-s3: the daemon's edfs_mount_server_sent_bytes_total; rclone-s3: rclone's core/stats bytes.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib/common.sh"
SRC=$(mktemp -d); mount -t tmpfs -o size=1200m tmpfs "$SRC"; head -c 1073741824 /dev/urandom > "$SRC/f"
for T in rclone-s3 edfs-s3; do
  W=$(mktemp -d)
  EDFS_MOUNT_OPTS="--metrics 127.0.0.1:18091" "$HERE/targets/$T.sh" up "$W" || { echo "$T up failed"; continue; }
  t0=$(now); dd if="$SRC/f" of="$W/mnt/f" bs=1M conv=fsync status=none; "$HERE/targets/$T.sh" settle "$W"; t1=$(now)
  if [ "$T" = edfs-s3 ]; then
    sent=$(curl -s http://127.0.0.1:18091/metrics | awk '/^edfs_mount_server_sent_bytes_total/ { s += $2 } END { printf "%d", s }')
  else
    sent=$(rclone rc --url http://127.0.0.1:18035/ core/stats | jq '.bytes')
  fi
  echo "target=$T written=1073741824 sent=$sent ratio=$(fdiv "$sent" 1073741824 3) secs=$(fsub "$t1" "$t0")"
  "$HERE/targets/$T.sh" down "$W"; rm -rf "$W"
done
umount "$SRC"; rmdir "$SRC"
