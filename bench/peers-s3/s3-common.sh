# shellcheck shell=bash
# The RGW for the S3 targets: CEPH_JSON names the file start-ceph.js wrote.
unset AWS_CA_BUNDLE # rclone 1.60 fails with it set ("unsupported transport"); the endpoint is plain http
: "${CEPH_JSON:?CEPH_JSON must name the file written by start-ceph.js}"
S3_ENDPOINT=$(jq -r .endpoint "$CEPH_JSON")
export AWS_ACCESS_KEY_ID=$(jq -r .accessKey "$CEPH_JSON") AWS_SECRET_ACCESS_KEY=$(jq -r .secretKey "$CEPH_JSON") AWS_REGION=us-east-1
# An rclone remote `rgw:` for bucket chores (and rclone's own mount).
s3_conf() { # s3_conf FILE
  printf '[rgw]\ntype = s3\nprovider = Ceph\nendpoint = %s\naccess_key_id = %s\nsecret_access_key = %s\nregion = us-east-1\nforce_path_style = true\n\n' \
    "$S3_ENDPOINT" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > "$1"
}
