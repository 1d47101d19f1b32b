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

# --- the code, the data and the results -------------------------------------------------------------------------
: "${REPO_URL:=}"                              # git URL to clone; empty: ship this checkout's HEAD (git archive)
: "${BRANCH:=main}"                            # branch (or tag) to clone from REPO_URL
: "${REMOTE_DIR:=zico-jax}"                    # checkout on the VM, relative to the ssh user's home
: "${VENV_DIR:=zico-jax-venv}"                 # virtual environment on the VM, relative to home
: "${PYTHON_VERSION:=3.11}"                    # jax 0.10 needs Python >= 3.11 (Ubuntu 22.04 ships 3.10)
: "${DATA_DIR:=zico-jax-data}"                 # optional data folder on the VM (relative to home, or absolute)
                                               # that replaces the data shipped with zico-jax: passed to every
                                               # zico command as $ZICO_JAX_DATA when it exists
: "${BUCKET:=}"                                # optional gs://bucket[/prefix]: every run writes its results to
                                               # $BUCKET/runs/$RUN_NAME directly (and resumes from there);
                                               # install.sh copies $BUCKET/data to $DATA_DIR when it exists
: "${LOG_DIR:=zico-jax-logs}"                  # run logs on every worker, relative to home
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
  for name in REMOTE_DIR VENV_DIR DATA_DIR BUCKET LOG_DIR COORDINATOR_PORT PYTHON_VERSION BRANCH REPO_URL \
              LIBTPU_FIND_LINKS; do
    printf '%s=%q; ' "$name" "${!name}"
  done
  # Relative paths are relative to the remote home directory.
  printf 'cd "$HOME"; '
  printf 'case "$DATA_DIR" in /*) ;; *) DATA_DIR="$HOME/$DATA_DIR";; esac; '
}

tpu_print_config() {
  local name
  for name in TPU_NAME ZONE PROJECT ACCELERATOR_TYPE RUNTIME_VERSION SPOT REPO_URL BRANCH REMOTE_DIR VENV_DIR \
              PYTHON_VERSION DATA_DIR BUCKET LOG_DIR COORDINATOR_PORT; do
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

# tpu_output_dir RUN_NAME: the folder a run writes, passed to zico as --config.output_dir: ${BUCKET%/}/runs/RUN_NAME
# when BUCKET is set (zico writes the bucket itself, through etils.epath, and a rerun resumes from it), else
# runs/RUN_NAME under the checkout on the VM (on worker 0).
tpu_output_dir() {
  if [ -n "$BUCKET" ]; then
    printf '%s/runs/%s\n' "${BUCKET%/}" "$1"
  else
    printf 'runs/%s\n' "$1"
  fi
}

# tpu_reject_output_dir ARGS...: the run scripts choose the output folder from $RUN_NAME (tpu_output_dir); refuse
# another one (as the field --config.output_dir or its short alias, spelt with an underscore or a dash).
tpu_reject_output_dir() {
  local arg
  for arg in "$@"; do
    case "$arg" in
      --output_dir | --output_dir=* | --output-dir | --output-dir=* | --config.output_dir | --config.output_dir=*)
        echo "error: set RUN_NAME instead of passing $arg (the output folder is \$BUCKET/runs/\$RUN_NAME, or" \
             "runs/\$RUN_NAME on the VM without BUCKET)" >&2
        exit 2 ;;
    esac
  done
}

# The job each worker runs, detached (nohup + setsid, so a dropped ssh connection does not end it):
#   bash JOB zico COMMAND ARGS...   with RUN_NAME DEST WORKER LOG in the environment.
# The run writes its results itself (to $DEST in the bucket, or to runs/$RUN_NAME without BUCKET); the job forwards a
# SIGTERM (a Spot preemption notice, a shutdown) to it, waits until it has exited (the search checkpoints first and
# exits with status 143), reports the exit status, and on worker 0 uploads the log to $DEST.log.
tpu_job_script() {
  cat <<'JOB'
#!/usr/bin/env bash
# Written by tpu_scripts/config.sh (tpu_launch): one zico run on this worker; worker 0 uploads this log at the end.
set -uo pipefail
echo "[$(date -u +%FT%TZ)] worker $WORKER: $*"
"$@" &
pid=$!
signalled=0
trap 'signalled=1; kill -TERM "$pid" 2>/dev/null' TERM INT HUP
while :; do
  signalled=0
  wait "$pid"
  status=$?
  # A trapped signal interrupts `wait` (status 128+N) while the run may still be saving: wait for it again.
  if [ "$signalled" = 0 ]; then break; fi
done
echo "[$(date -u +%FT%TZ)] worker $WORKER: exit status $status"
if [ "$WORKER" = 0 ] && [ -n "$DEST" ]; then
  echo "results: $DEST"
  gcloud storage cp "$LOG" "$DEST.log" >/dev/null 2>&1 || echo "warning: upload of $LOG to $DEST.log failed" >&2
fi
exit "$status"
JOB
}

# What every worker runs through ssh to start the job (after tpu_remote_vars, RUN_NAME=..., DEST=..., ARGS=(...)).
tpu_launch_script() {
  cat <<'LAUNCH'
set -euo pipefail
cd "$HOME/$REMOTE_DIR"
# The venv's bin first on PATH: `zico` is the console command `pip install` put there.
export PATH="$HOME/$VENV_DIR/bin:$PATH"
if [ ! -x "$HOME/$VENV_DIR/bin/zico" ]; then
  echo "$(hostname): no $HOME/$VENV_DIR/bin/zico; run tpu_scripts/install.sh first" >&2
  exit 1
fi
# zico writes to gs:// through etils.epath (gcsfs) and orbax (google-cloud-storage): the extra zico-jax[gcs].
if [ -n "$DEST" ] && ! "$HOME/$VENV_DIR/bin/python" -c 'import gcsfs, google.cloud.storage' >/dev/null 2>&1; then
  echo "$(hostname): the venv cannot write to gs:// (no gcsfs / google-cloud-storage); rerun tpu_scripts/install.sh" >&2
  exit 1
fi
md() { curl -sf -H 'Metadata-Flavor: Google' "http://metadata.google.internal/computeMetadata/v1/instance/attributes/$1"; }
WORKER="$(md agent-worker-number || echo 0)"
ENDPOINTS="$(md worker-network-endpoints || true)"
NUM_WORKERS=1
if [ -n "$ENDPOINTS" ]; then NUM_WORKERS="$(awk -F, '{print NF}' <<<"$ENDPOINTS")"; fi
# Multi-host slice: ZICO_JAX_DISTRIBUTED=1 makes zico_jax.sharding.initialize_distributed() call
# jax.distributed.initialize(); name the coordinator (worker 0) where the ssh session lacks the TPU variables (JAX
# detects the rest).
if [ "$NUM_WORKERS" -gt 1 ]; then
  export ZICO_JAX_DISTRIBUTED=1
  if [ -z "${JAX_COORDINATOR_ADDRESS:-}" ] && [ -z "${TPU_WORKER_HOSTNAMES:-}" ]; then
    first="${ENDPOINTS%%,*}"
    export JAX_COORDINATOR_ADDRESS="${first##*:}:$COORDINATOR_PORT"
  fi
  if [ -z "$DEST" ] && [ "$WORKER" = 0 ]; then
    echo "warning: BUCKET is not set on a slice of $NUM_WORKERS hosts: only worker 0 has the run's files, so" \
         "a rerun cannot resume on every host; set BUCKET" >&2
  fi
fi
# The data shipped with zico-jax, unless a data folder is there to replace it.
if [ -d "$DATA_DIR" ]; then
  export ZICO_JAX_DATA="$DATA_DIR"
fi
mkdir -p "$HOME/$LOG_DIR"
LOG="$HOME/$LOG_DIR/$RUN_NAME.log"
JOB="$HOME/$LOG_DIR/$RUN_NAME.job.sh"
printf '%s\n' "$JOB_SCRIPT" > "$JOB"
export RUN_NAME DEST WORKER LOG
nohup setsid bash "$JOB" "${ARGS[@]}" > "$LOG" 2>&1 < /dev/null &
echo "worker $WORKER ($(hostname)): started, pid $!, log ~/$LOG_DIR/$RUN_NAME.log"
LAUNCH
}

# tpu_launch RUN_NAME zico COMMAND ARGS...: start `zico COMMAND ARGS...` (the venv's console command) on every
# worker at once, detached, in the checkout ($ZICO_JAX_DATA=$DATA_DIR where that folder exists); ARGS must write to
# $(tpu_output_dir RUN_NAME) (--config.output_dir=..., after any --config=PRESET).
tpu_launch() {
  local run_name="$1"
  shift
  if [[ ! "$run_name" =~ ^[A-Za-z0-9._-]+$ ]]; then
    echo "error: RUN_NAME must be letters, digits, '.', '_' or '-'; got '$run_name'" >&2
    exit 2
  fi
  tpu_require_gcloud
  local out dest="" script
  out="$(tpu_output_dir "$run_name")"
  if [ -n "$BUCKET" ]; then dest="$out"; fi
  script="$(tpu_remote_vars)RUN_NAME=$(printf '%q' "$run_name"); DEST=$(printf '%q' "$dest"); "
  script+="JOB_SCRIPT=$(printf '%q' "$(tpu_job_script)"); ARGS=($(printf '%q ' "$@")); $(tpu_launch_script)"
  tpu_ssh all "bash -c $(tpu_sq "$script")"
  echo
  echo "Started $run_name on every worker of $TPU_NAME (only process 0 writes $out). Follow it with:"
  echo "  gcloud compute tpus tpu-vm ssh $TPU_NAME --zone=$ZONE${PROJECT:+ --project=$PROJECT} --worker=0" \
       "--command='tail -f ~/$LOG_DIR/$run_name.log'"
  if [ -n "$BUCKET" ]; then
    echo "The run writes its results to $out itself, as it goes (the log follows at the end, to $out.log);" \
         "fetch them with:"
    echo "  gcloud storage cp -r $out runs/"
  else
    echo "BUCKET is not set: fetch the results from worker 0 when the run has ended with:"
    echo "  gcloud compute tpus tpu-vm scp --recurse $TPU_NAME:~/$REMOTE_DIR/$out runs/ --zone=$ZONE --worker=0"
  fi
}
