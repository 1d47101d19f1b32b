#!/usr/bin/env bash
# Run the architecture search (`zico search`) on every worker of $TPU_NAME at once.
#
# Usage:
#   RUN_NAME=search_sd855 tpu_scripts/run_search.sh --config.budgets.latency=10 --config.iterations=100000
#   RUN_NAME=pareto tpu_scripts/run_search.sh --config.proxy=zico_bc --config.mode=pareto
# Arguments go to `zico search` (--config.FIELD=VALUE for the fields of zico_jax/configs/search.py: space, proxy,
# mode, iterations, seed, budgets.latency, ...; a --config=PRESET is the base the fields apply over). The output
# folder comes from RUN_NAME (do not pass --config.output_dir): with BUCKET set the run writes its results and
# checkpoints to $BUCKET/runs/$RUN_NAME itself, else to runs/$RUN_NAME on the VM. A data folder $DATA_DIR, where it
# exists, replaces the data shipped with zico-jax ($ZICO_JAX_DATA). The run is detached (nohup): a dropped ssh
# connection does not stop it.
# Resuming: the search checkpoints with orbax (every --config.checkpoint_every iterations, and on a preemption
# notice: SIGTERM, on every host at the same round, then exit status 143); rerun this script with the same
# RUN_NAME and arguments and it continues from the latest checkpoint. After a Spot preemption the VM's disk is
# gone, the bucket is not: with BUCKET set, recreate the VM, run install.sh, then rerun this script with the same
# RUN_NAME and arguments.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/config.sh"
: "${RUN_NAME:=search}"

tpu_reject_output_dir "$@"
OUTPUT_DIR="$(tpu_output_dir "$RUN_NAME")"  # $BUCKET/runs/$RUN_NAME, or runs/$RUN_NAME without BUCKET
# The output folder last: a --config=PRESET among the arguments is the base every --config.FIELD applies over.
tpu_launch "$RUN_NAME" zico search "$@" --config.output_dir="$OUTPUT_DIR"
