#!/usr/bin/env bash
# Install zico-jax on every worker of $TPU_NAME: code, a virtual environment with zico-jax[gcs] (its `zico` command,
# and what it needs to write to gs://) and jax[tpu]. zico-jax ships its data; an optional data folder replaces it.
#
# Usage:
#   tpu_scripts/install.sh                                        # ships this checkout's HEAD (git archive)
#   REPO_URL=https://github.com/OWNER/zico-jax.git BRANCH=main tpu_scripts/install.sh
#   BUCKET=gs://my-bucket/zico tpu_scripts/install.sh             # also copies gs://my-bucket/zico/data to $DATA_DIR
#                                                                 # when that exists (optional)
# Safe to rerun (updates the code, reinstalls into the same environment). Ends by printing `zico --version` and
# jax.device_count() on every worker: all workers of a slice must report the slice's total chip count (e.g. 4 on
# v4-8, 16 on v4-32).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/config.sh"
tpu_require_gcloud

if [ -z "$REPO_URL" ]; then
  # No repository URL: send the committed state of this checkout (uncommitted changes are not included).
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  archive="$tmp/zico-jax-src.tar.gz"
  git -C "$REPO_ROOT" archive --format=tar.gz -o "$archive" HEAD
  echo "Copying $(git -C "$REPO_ROOT" rev-parse --short HEAD) of $REPO_ROOT to every worker ..."
  tpu_gcloud scp "$archive" "$TPU_NAME:zico-jax-src.tar.gz" --worker=all
fi

read -r -d '' remote <<'REMOTE' || true
set -euo pipefail
echo "== $(hostname): code"
if [ -n "$REPO_URL" ]; then
  if [ -d "$REMOTE_DIR/.git" ]; then
    git -C "$REMOTE_DIR" fetch --quiet origin "$BRANCH"
    git -C "$REMOTE_DIR" checkout --quiet -B "$BRANCH" FETCH_HEAD
  else
    git clone --quiet --branch "$BRANCH" "$REPO_URL" "$REMOTE_DIR"
  fi
else
  mkdir -p "$REMOTE_DIR"
  tar -xzf zico-jax-src.tar.gz -C "$REMOTE_DIR"
  rm -f zico-jax-src.tar.gz
fi

echo "== $(hostname): Python $PYTHON_VERSION and the virtual environment"
PYTHON="python$PYTHON_VERSION"
if ! command -v "$PYTHON" >/dev/null 2>&1 || ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  # Ubuntu 22.04 (the TPU VM images) ships Python 3.10; jax 0.10 needs >= 3.11: take it from the deadsnakes PPA.
  sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq
  if ! sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$PYTHON_VERSION" "python$PYTHON_VERSION-venv"; then
    sudo add-apt-repository -y ppa:deadsnakes/ppa
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$PYTHON_VERSION" "python$PYTHON_VERSION-venv"
  fi
fi
if [ ! -x "$VENV_DIR/bin/python" ]; then
  "$PYTHON" -m venv "$VENV_DIR"
fi
PIP="$VENV_DIR/bin/pip"
"$PIP" install -q --upgrade pip
# The repository as a package: its console command `zico` lands in $VENV_DIR/bin (the run scripts start it). The
# extra `gcs` (gcsfs for etils.epath, google-cloud-storage for orbax) lets a run write to gs://: always installed,
# so that a run started later with BUCKET set finds it (it is small next to jax).
"$PIP" install -q -e "$HOME/$REMOTE_DIR[gcs]"
# jax[tpu] at the jax version setup.py allowed, so that libtpu matches and jax is not upgraded past the pin.
JAX_VERSION="$("$VENV_DIR/bin/python" -c 'import jax; print(jax.__version__)')"
"$PIP" install -q "jax[tpu]==$JAX_VERSION" -f "$LIBTPU_FIND_LINKS"

echo "== $(hostname): data"
# zico-jax ships its data (zico_jax/packaged_data); a folder $DATA_DIR with the same layout replaces it where it exists.
if [ -n "$BUCKET" ] && gcloud storage ls "${BUCKET%/}/data/" >/dev/null 2>&1; then
  mkdir -p "$DATA_DIR"
  gcloud storage cp -r "${BUCKET%/}/data/*" "$DATA_DIR/"
  echo "the runs read $DATA_DIR (a copy of ${BUCKET%/}/data) instead of the data shipped with zico-jax"
elif [ -d "$DATA_DIR" ]; then
  echo "the runs read $DATA_DIR instead of the data shipped with zico-jax"
else
  echo "the runs read the data shipped with zico-jax (no $DATA_DIR)"
fi
REMOTE

tpu_ssh all "bash -c $(tpu_sq "$(tpu_remote_vars)$remote")"

# Every worker at once (a pod slice's chips only initialise when all hosts take part).
echo "== zico --version and jax.device_count() per worker"
tpu_ssh all "bash -c $(tpu_sq "$(tpu_remote_vars)"'"$VENV_DIR/bin/zico" --version && "$VENV_DIR/bin/python" -c "import jax, socket; print(socket.gethostname(), \"process\", jax.process_index(), \"of\", jax.process_count(), \"devices:\", jax.device_count(), \"local:\", jax.local_device_count())"')"
