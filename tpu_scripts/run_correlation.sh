#!/usr/bin/env bash
# Run the correlation experiment (python -m experiments.correlation) on every worker of $TPU_NAME at once.
#
# Usage:
#   RUN_NAME=nb201_1000 tpu_scripts/run_correlation.sh --num_archs=1000
#   RUN_NAME=nb201_all tpu_scripts/run_correlation.sh --num_archs=-1 --proxies=zico,zico_bc --config.candidate_batch=64
# Arguments are experiments.correlation's flags (--space, --proxies, --num_archs, --config.FIELD=VALUE, ...); the
# output folder is runs/$RUN_NAME on the VM (do not pass --output_dir) and the data folder is $DATA_DIR (passed as
# $ZICO_JAX_DATA). The run is detached (nohup): a dropped ssh connection does not stop it. Rerunning with the same
# RUN_NAME resumes (architectures already in scores.jsonl are not scored again). With BUCKET set, worker 0 uploads
# runs/$RUN_NAME to $BUCKET/runs/$RUN_NAME while it runs and when it ends.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/config.sh"
: "${RUN_NAME:=correlation}"

tpu_reject_output_dir "$@"
tpu_launch "$RUN_NAME" -m experiments.correlation --output_dir="runs/$RUN_NAME" "$@"
