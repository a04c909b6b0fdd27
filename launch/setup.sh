#!/usr/bin/env bash
# Idempotent per-worker setup: Khmer fonts, the venv, the package; then runs
# an ocr_jax module if one is given. Safe to rerun on every worker:
#   bash launch/setup.sh                                   # setup only
#   bash launch/setup.sh ocr_jax.main --config=configs/conservative_small.py \
#       --workdir=runs/conservative_small
#   bash launch/setup.sh launch.grid --grid_dir=runs/grid
# OCR_JAX_EXTRAS picks the pyproject extras: 'test' (default, CPU), 'tpu' on
# TPU VMs, 'cuda' on NVIDIA GPU hosts (docs/scale_out.md); the environment
# (OCR_JAX_DISTRIBUTED, JAX_COORDINATOR_ADDRESS...) passes through to the run.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
FONTS=(fonts-khmeros fonts-sil-mondulkiri fonts-sil-mondulkiri-extra
       fonts-noto-core fonts-noto-extra wamerican fontconfig)
# dpkg -s is quick; apt only runs when a package is missing.
if ! dpkg -s "${FONTS[@]}" >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || true
  $SUDO apt-get install -y -qq "${FONTS[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
# Reinstall only when pyproject.toml or the extras changed since the last
# install.
EXTRAS="${OCR_JAX_EXTRAS:-test}"
STAMP=".venv/.ocr_jax_installed_${EXTRAS//,/_}"
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  pip install -q --upgrade pip
  pip install -q -e ".[${EXTRAS}]"
  touch "$STAMP"
fi

if [ "$#" -gt 0 ]; then
  MODULE="$1"
  shift
  exec python -m "$MODULE" "$@"
fi
