#!/usr/bin/env bash
# Run the architecture search (`zico search`) on every worker of $TPU_NAME at once.
#
# Usage:
#   RUN_NAME=search_sd855 tpu_scripts/run_search.sh --config.budgets.latency=10 --config.iterations=100000
#   RUN_NAME=pareto tpu_scripts/run_search.sh --config.proxy=zico_bc --config.mode=pareto
# Arguments go to `zico search` (--config.FIELD=VALUE for the fields of zico_jax/configs/search.py: space, proxy,
# mode, iterations, seed, budgets.latency, ...; a --config=PRESET is the base the fields apply over); the output folder is runs/$RUN_NAME
# on the VM (do not pass --config.output_dir) and the data folder is $DATA_DIR (passed as $ZICO_JAX_DATA). The run
# is detached (nohup): a dropped ssh connection does not stop it.
# Resuming: the search checkpoints with orbax (every --config.checkpoint_every iterations and on SIGTERM); rerun
# this script with the same RUN_NAME and it continues from the latest checkpoint. After a Spot preemption the VM's
# disk is gone: set BUCKET (worker 0 uploads runs/$RUN_NAME every $SYNC_EVERY s), recreate the VM, run install.sh,
# then rerun this script with the same RUN_NAME and arguments; it first copies $BUCKET/runs/$RUN_NAME back.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/config.sh"
: "${RUN_NAME:=search}"

tpu_reject_output_dir "$@"
# The output folder last: a --config=PRESET among the arguments must precede every --config.FIELD.
tpu_launch "$RUN_NAME" zico search "$@" --config.output_dir="runs/$RUN_NAME"
