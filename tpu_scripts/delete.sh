#!/usr/bin/env bash
# Delete the TPU VM $TPU_NAME (billing stops; its disks, and any results not yet copied off it, are lost).
#
# Usage:
#   tpu_scripts/delete.sh              # asks gcloud's confirmation
#   tpu_scripts/delete.sh --quiet      # no prompt (extra arguments go to `gcloud compute tpus tpu-vm delete`)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/config.sh"
tpu_require_gcloud

if [ -z "$BUCKET" ]; then
  echo "note: BUCKET is not set, so results exist only on the VM; copy them first, e.g." >&2
  echo "  gcloud compute tpus tpu-vm scp --recurse $TPU_NAME:~/$REMOTE_DIR/runs . --zone=$ZONE --worker=0" >&2
fi
tpu_gcloud delete "$TPU_NAME" "$@"
