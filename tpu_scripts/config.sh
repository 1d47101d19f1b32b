#!/usr/bin/env bash
# Settings and helpers shared by the tpu_scripts/*.sh scripts; sourced by them, not run.
#
# Usage (any variable may be set in the environment first; these are the defaults):
#   TPU_NAME=zico-jax ZONE=us-central2-b ACCELERATOR_TYPE=v4-8 tpu_scripts/create.sh
#   source tpu_scripts/config.sh && tpu_print_config      # show the values in effect
#
# A variable already set in the environment wins over the default below (`: "${VAR:=default}"`).
set -euo pipefail

# --- the TPU VM -------------------------------------------------------------------------------------------------
: "${TPU_NAME:=zico-jax}"                      # name of the TPU VM (or pod slice)
: "${ZONE:=us-central2-b}"                     # v4 lives in us-central2-b; v5e e.g. us-west4-a, us-central1-a
: "${PROJECT:=}"                               # empty: gcloud's default project (gcloud config get-value project)
: "${ACCELERATOR_TYPE:=v4-8}"                  # v4-8 = 4 chips, 1 host; v4-32 = 16 chips, 4 hosts (a pod slice)
: "${RUNTIME_VERSION:=tpu-ubuntu2204-base}"    # TPU VM image for JAX on v4; v5e: v2-alpha-tpuv5-lite
: "${SPOT:=0}"                                 # 1: create a Spot TPU VM (cheaper, can be preempted at any time)

# --- the code and data on every worker --------------------------------------------------------------------------
: "${REPO_URL:=}"                              # git URL to clone; empty: ship this checkout's HEAD (git archive)
: "${BRANCH:=main}"                            # branch (or tag) to clone from REPO_URL
: "${REMOTE_DIR:=zico-jax}"                    # checkout on the VM, relative to the ssh user's home
: "${VENV_DIR:=zico-jax-venv}"                 # virtual environment on the VM, relative to home
: "${PYTHON_VERSION:=3.11}"                    # jax 0.10 needs Python >= 3.11 (Ubuntu 22.04 ships 3.10)
: "${DATA_DIR:=zico-jax-data}"                 # offline data on the VM (relative to home, or absolute);
                                               # passed to every zico command as $ZICO_JAX_DATA
: "${BUCKET:=}"                                # optional gs://bucket[/prefix]: data from $BUCKET/data,
                                               # results to $BUCKET/runs/$RUN_NAME
: "${LOG_DIR:=zico-jax-logs}"                  # run logs on every worker, relative to home
: "${SYNC_EVERY:=600}"                         # seconds between uploads of a running experiment to $BUCKET
: "${COORDINATOR_PORT:=8476}"                  # jax.distributed coordinator port on worker 0 (multi-host slices)

LIBTPU_FIND_LINKS="https://storage.googleapis.com/jax-releases/libtpu_releases.html"
TPU_SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$TPU_SCRIPTS_DIR/.." && pwd)"

# gcloud compute tpus tpu-vm SUBCOMMAND [ARGS...] with --zone and --project (when PROJECT is set) added.
tpu_gcloud() {
  local sub="$1"
  shift
  gcloud compute tpus tpu-vm "$sub" "$@" --zone="$ZONE" ${PROJECT:+--project="$PROJECT"}
}

# tpu_ssh WORKER COMMAND: run COMMAND (a bash command line) on worker WORKER (0, 1, ... or all, run in parallel).
tpu_ssh() {
  tpu_gcloud ssh "$TPU_NAME" --worker="$1" --command="$2"
}

# tpu_remote_vars: shell assignments (safely quoted) that put this side's settings into a remote command.
tpu_remote_vars() {
  local name
  for name in REMOTE_DIR VENV_DIR DATA_DIR BUCKET LOG_DIR SYNC_EVERY COORDINATOR_PORT PYTHON_VERSION BRANCH \
              REPO_URL LIBTPU_FIND_LINKS; do
    printf '%s=%q; ' "$name" "${!name}"
  done
  # Relative paths are relative to the remote home directory.
  printf 'cd "$HOME"; '
  printf 'case "$DATA_DIR" in /*) ;; *) DATA_DIR="$HOME/$DATA_DIR";; esac; '
}

tpu_print_config() {
  local name
  for name in TPU_NAME ZONE PROJECT ACCELERATOR_TYPE RUNTIME_VERSION SPOT REPO_URL BRANCH REMOTE_DIR VENV_DIR \
              PYTHON_VERSION DATA_DIR BUCKET LOG_DIR SYNC_EVERY COORDINATOR_PORT; do
    printf '%-18s %s\n' "$name" "${!name}"
  done
}

tpu_require_gcloud() {
  if ! command -v gcloud >/dev/null 2>&1; then
    echo "error: gcloud not found; install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)" >&2
    exit 1
  fi
}

# tpu_sq STRING: STRING as one single-quoted shell word (POSIX quoting, safe whatever the remote login shell).
tpu_sq() {
  printf "'%s'" "${1//\'/\'\\\'\'}"
}

# tpu_reject_output_dir ARGS...: the run scripts choose the output folder from $RUN_NAME; refuse another one (as
# the field --config.output_dir or its short alias, spelt with an underscore or a dash).
tpu_reject_output_dir() {
  local arg
  for arg in "$@"; do
    case "$arg" in
      --output_dir | --output_dir=* | --output-dir | --output-dir=* | --config.output_dir | --config.output_dir=*)
        echo "error: set RUN_NAME instead of passing $arg (the output folder is runs/\$RUN_NAME on the VM)" >&2
        exit 2 ;;
    esac
  done
}

# The job each worker runs, detached (nohup + setsid, so a dropped ssh connection does not end it):
#   bash JOB zico COMMAND ARGS...   with RUN_NAME OUT DEST WORKER SYNC_EVERY LOG in the environment.
# Worker 0 uploads OUT to DEST every SYNC_EVERY seconds while the command runs and once at the end (also after a
# SIGTERM, e.g. a Spot preemption: the search checkpoints on SIGTERM, then the upload runs).
tpu_job_script() {
  cat <<'JOB'
#!/usr/bin/env bash
# Written by tpu_scripts/config.sh (tpu_launch): one zico run on this worker; worker 0 uploads the results.
set -uo pipefail
upload() {
  if [ "$WORKER" = 0 ] && [ -n "$DEST" ] && [ -d "$OUT" ]; then
    gcloud storage rsync -r "$OUT" "$DEST" || echo "warning: upload of $OUT to $DEST failed" >&2
    gcloud storage cp "$LOG" "$DEST.log" >/dev/null 2>&1 || true
  fi
}
echo "[$(date -u +%FT%TZ)] worker $WORKER: $*"
"$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT HUP
syncer=""
if [ "$WORKER" = 0 ] && [ -n "$DEST" ]; then
  ( while sleep "$SYNC_EVERY"; do kill -0 "$pid" 2>/dev/null || break; upload; done ) &
  syncer=$!
fi
wait "$pid"
status=$?
while kill -0 "$pid" 2>/dev/null; do  # wait was interrupted by a signal: let the run save and exit
  wait "$pid"
  status=$?
done
if [ -n "$syncer" ]; then kill "$syncer" 2>/dev/null || true; fi
echo "[$(date -u +%FT%TZ)] worker $WORKER: exit status $status"
upload
if [ "$WORKER" = 0 ] && [ -n "$DEST" ]; then echo "results: $DEST"; fi
exit "$status"
JOB
}

# What every worker runs through ssh to start the job (after tpu_remote_vars, RUN_NAME=..., ARGS=(...)).
tpu_launch_script() {
  cat <<'LAUNCH'
set -euo pipefail
cd "$HOME/$REMOTE_DIR"
OUT="runs/$RUN_NAME"
# The venv's bin first on PATH: `zico` is the console command `pip install` put there.
export PATH="$HOME/$VENV_DIR/bin:$PATH"
if [ ! -x "$HOME/$VENV_DIR/bin/zico" ]; then
  echo "$(hostname): no $HOME/$VENV_DIR/bin/zico; run tpu_scripts/install.sh first" >&2
  exit 1
fi
if [ ! -d "$DATA_DIR" ]; then
  echo "$(hostname): no data folder $DATA_DIR; run tpu_scripts/install.sh with BUCKET set, or copy the data there" >&2
  exit 1
fi
md() { curl -sf -H 'Metadata-Flavor: Google' "http://metadata.google.internal/computeMetadata/v1/instance/attributes/$1"; }
WORKER="$(md agent-worker-number || echo 0)"
ENDPOINTS="$(md worker-network-endpoints || true)"
NUM_WORKERS=1
if [ -n "$ENDPOINTS" ]; then NUM_WORKERS="$(awk -F, '{print NF}' <<<"$ENDPOINTS")"; fi
DEST=""
if [ -n "$BUCKET" ]; then DEST="${BUCKET%/}/runs/$RUN_NAME"; fi
# Resume: a worker without the run's files (a recreated VM; on a pod slice every worker but 0, since only process 0
# writes) takes the bucket's copy, so that every process skips the same candidates and restores the same checkpoint.
if [ -n "$DEST" ] && gcloud storage ls "$DEST/" >/dev/null 2>&1; then
  if [ "$WORKER" != 0 ] || [ -z "$(ls -A "$OUT" 2>/dev/null)" ]; then
    mkdir -p "$OUT"
    gcloud storage rsync -r --delete-unmatched-destination-objects "$DEST" "$OUT"
  fi
fi
# Multi-host slice: ZICO_JAX_DISTRIBUTED=1 makes zico_jax.sharding.initialize_distributed() call
# jax.distributed.initialize(); name the coordinator (worker 0) where the ssh session lacks the TPU variables (JAX
# detects the rest).
if [ "$NUM_WORKERS" -gt 1 ]; then
  export ZICO_JAX_DISTRIBUTED=1
  if [ -z "${JAX_COORDINATOR_ADDRESS:-}" ] && [ -z "${TPU_WORKER_HOSTNAMES:-}" ]; then
    first="${ENDPOINTS%%,*}"
    export JAX_COORDINATOR_ADDRESS="${first##*:}:$COORDINATOR_PORT"
  fi
fi
export ZICO_JAX_DATA="$DATA_DIR"
mkdir -p "$HOME/$LOG_DIR"
LOG="$HOME/$LOG_DIR/$RUN_NAME.log"
JOB="$HOME/$LOG_DIR/$RUN_NAME.job.sh"
printf '%s\n' "$JOB_SCRIPT" > "$JOB"
export RUN_NAME OUT DEST WORKER SYNC_EVERY LOG
nohup setsid bash "$JOB" "${ARGS[@]}" > "$LOG" 2>&1 < /dev/null &
echo "worker $WORKER ($(hostname)): started, pid $!, log ~/$LOG_DIR/$RUN_NAME.log"
LAUNCH
}

# tpu_launch RUN_NAME zico COMMAND ARGS...: start `zico COMMAND ARGS...` (the venv's console command) on every
# worker at once, detached, in the checkout, with $ZICO_JAX_DATA=$DATA_DIR; ARGS must write to runs/RUN_NAME
# (--config.output_dir=runs/RUN_NAME, after any --config=PRESET: absl reads a preset before its fields).
tpu_launch() {
  local run_name="$1"
  shift
  if [[ ! "$run_name" =~ ^[A-Za-z0-9._-]+$ ]]; then
    echo "error: RUN_NAME must be letters, digits, '.', '_' or '-'; got '$run_name'" >&2
    exit 2
  fi
  tpu_require_gcloud
  local vars
  vars="$(tpu_remote_vars)RUN_NAME=$(printf '%q' "$run_name"); "
  if [ -n "$BUCKET" ]; then
    # Worker 0 may hold a newer state than the bucket (a rerun on a VM that was not recreated): upload it first, so
    # the other workers of a pod slice resume from the same files.
    tpu_ssh 0 "bash -c $(tpu_sq "${vars}"'cd "$HOME/$REMOTE_DIR"; out="runs/$RUN_NAME";
      if [ -n "$(ls -A "$out" 2>/dev/null)" ]; then gcloud storage rsync -r "$out" "${BUCKET%/}/runs/$RUN_NAME"; fi')"
  fi
  local script
  script="${vars}JOB_SCRIPT=$(printf '%q' "$(tpu_job_script)"); ARGS=($(printf '%q ' "$@")); $(tpu_launch_script)"
  tpu_ssh all "bash -c $(tpu_sq "$script")"
  echo
  echo "Started $run_name on every worker of $TPU_NAME (only process 0 writes runs/$run_name). Follow it with:"
  echo "  gcloud compute tpus tpu-vm ssh $TPU_NAME --zone=$ZONE${PROJECT:+ --project=$PROJECT} --worker=0" \
       "--command='tail -f ~/$LOG_DIR/$run_name.log'"
  if [ -n "$BUCKET" ]; then
    echo "Results are uploaded to ${BUCKET%/}/runs/$run_name (every ${SYNC_EVERY}s and at the end); fetch them with:"
    echo "  gcloud storage cp -r ${BUCKET%/}/runs/$run_name runs/"
  else
    echo "BUCKET is not set: fetch the results from worker 0 when the run has ended with:"
    echo "  gcloud compute tpus tpu-vm scp --recurse $TPU_NAME:~/$REMOTE_DIR/runs/$run_name runs/ --zone=$ZONE --worker=0"
  fi
}
