#!/usr/bin/env bash
# Run the architecture search (python -m experiments.search) on every worker of $TPU_NAME at once.
#
# Usage:
#   RUN_NAME=search_sd855 tpu_scripts/run_search.sh --config.budgets.latency=10 --iterations=100000
#   RUN_NAME=pareto tpu_scripts/run_search.sh --proxy=zico_bc --mode=pareto
# Arguments are experiments.search's flags (--space, --proxy, --mode, --iterations, --seed, --config.FIELD=VALUE,
# ...); the output folder is runs/$RUN_NAME on the VM (do not pass --output_dir) and the data folder is $DATA_DIR
# (passed as $ZICO_JAX_DATA). The run is detached (nohup): a dropped ssh connection does not stop it.
# Resuming: the search checkpoints with orbax (every --config.checkpoint_every iterations and on SIGTERM); rerun
# this script with the same RUN_NAME and it continues from the latest checkpoint. After a Spot preemption the VM's
# disk is gone: set BUCKET (worker 0 uploads runs/$RUN_NAME every $SYNC_EVERY s), recreate the VM, run install.sh,
# then rerun this script with the same RUN_NAME and arguments; it first copies $BUCKET/runs/$RUN_NAME back.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/config.sh"
: "${RUN_NAME:=search}"

tpu_reject_output_dir "$@"
tpu_launch "$RUN_NAME" -m experiments.search --output_dir="runs/$RUN_NAME" "$@"
