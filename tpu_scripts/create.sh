#!/usr/bin/env bash
# Create the TPU VM (or pod slice) named $TPU_NAME; see tpu_scripts/config.sh for every setting.
#
# Usage:
#   tpu_scripts/create.sh                                   # v4-8 (4 chips, one host) in us-central2-b, on demand
#   SPOT=1 tpu_scripts/create.sh                            # a Spot VM: much cheaper, may be preempted at any time
#   ACCELERATOR_TYPE=v4-32 TPU_NAME=zico-pod tpu_scripts/create.sh            # a pod slice (4 hosts)
#   ACCELERATOR_TYPE=v5litepod-8 RUNTIME_VERSION=v2-alpha-tpuv5-lite ZONE=us-west4-a tpu_scripts/create.sh
# Extra arguments are passed on to `gcloud compute tpus tpu-vm create`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/config.sh"
tpu_require_gcloud

create_args=(--accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION")
if [ "$SPOT" = 1 ]; then
  create_args+=(--spot)
fi

tpu_print_config
echo
echo "Creating $TPU_NAME ($ACCELERATOR_TYPE, $([ "$SPOT" = 1 ] && echo spot || echo on-demand)) in $ZONE ..."
tpu_gcloud create "$TPU_NAME" "${create_args[@]}" "$@"

cat <<NOTE

Cost: a TPU VM is billed per chip-hour for as long as it exists (state READY), busy or idle; Spot VMs cost a
fraction of on-demand but can be preempted at any time. See https://cloud.google.com/tpu/pricing and
tpu_scripts/README.md. Delete it when you are done:  tpu_scripts/delete.sh
Next: tpu_scripts/install.sh
NOTE
