#!/usr/bin/env bash
# Run the correlation experiment (`zico correlate`) on every worker of $TPU_NAME at once.
#
# Usage:
#   RUN_NAME=nb201_1000 tpu_scripts/run_correlation.sh --config.num_archs=1000 --config.proxies=zico,zico_bc
#   RUN_NAME=nb201_all tpu_scripts/run_correlation.sh --config.num_archs=-1 --config.candidate_batch=64
# Arguments go to `zico correlate` (--config.FIELD=VALUE for the fields of zico_jax/configs/correlation.py: space,
# proxies, num_archs, ...; a --config=PRESET is the base the fields apply over). The output folder comes from
# RUN_NAME (do not pass --config.output_dir): with BUCKET set the run writes its results to $BUCKET/runs/$RUN_NAME
# itself, else to runs/$RUN_NAME on the VM. A data folder $DATA_DIR, where it exists, replaces the data shipped with
# zico-jax ($ZICO_JAX_DATA). The run is detached (nohup): a dropped ssh connection does not stop it. Rerunning with
# the same RUN_NAME resumes (architectures already in scores.jsonl, read back from the bucket with BUCKET set, are
# not scored again).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/config.sh"
: "${RUN_NAME:=correlation}"

tpu_reject_output_dir "$@"
OUTPUT_DIR="$(tpu_output_dir "$RUN_NAME")"  # $BUCKET/runs/$RUN_NAME, or runs/$RUN_NAME without BUCKET
# The output folder last: a --config=PRESET among the arguments is the base every --config.FIELD applies over.
tpu_launch "$RUN_NAME" zico correlate "$@" --config.output_dir="$OUTPUT_DIR"
