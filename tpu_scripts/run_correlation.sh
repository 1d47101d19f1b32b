#!/usr/bin/env bash
# Run the correlation experiment (`zico correlate`) on every worker of $TPU_NAME at once.
#
# Usage:
#   RUN_NAME=nb201_1000 tpu_scripts/run_correlation.sh --config.num_archs=1000 --config.proxies=zico,zico_bc
#   RUN_NAME=nb201_all tpu_scripts/run_correlation.sh --config.num_archs=-1 --config.candidate_batch=64
# Arguments go to `zico correlate` (--config.FIELD=VALUE for the fields of zico_jax/configs/correlation.py: space,
# proxies, num_archs, ...; a --config=PRESET is the base the fields apply over); the output folder is runs/$RUN_NAME on the VM (do not pass
# --config.output_dir) and the data folder is $DATA_DIR (passed as $ZICO_JAX_DATA). The run is detached (nohup): a
# dropped ssh connection does not stop it. Rerunning with the same RUN_NAME resumes (architectures already in
# scores.jsonl are not scored again). With BUCKET set, worker 0 uploads runs/$RUN_NAME to $BUCKET/runs/$RUN_NAME
# while it runs and when it ends.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/config.sh"
: "${RUN_NAME:=correlation}"

tpu_reject_output_dir "$@"
# The output folder last: a --config=PRESET among the arguments must precede every --config.FIELD.
tpu_launch "$RUN_NAME" zico correlate "$@" --config.output_dir="runs/$RUN_NAME"
