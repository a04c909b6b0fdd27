#!/usr/bin/env bash
# Trains on NVIDIA GPUs: every GPU of one host, or of several hosts.
#
# One host (one process drives all its GPUs; nothing to coordinate):
#   bash launch/gpu.sh -- --config=configs/conservative_small.py \
#       --workdir=runs/conservative_small
#
# Several hosts: the same command on each host, with host 0's address (any
# free port), the number of hosts and this host's index (0 .. N-1). The
# workdir must be one folder every host sees (NFS, or a gcsfuse mount):
#   bash launch/gpu.sh 10.0.0.2:8476 2 0 -- --config=... --workdir=/shared/x
#   bash launch/gpu.sh 10.0.0.2:8476 2 1 -- --config=... --workdir=/shared/x
# Under SLURM (`srun`) or Open MPI (`mpirun`) jax finds these by itself:
#   srun --nodes=2 --ntasks-per-node=1 env OCR_JAX_DISTRIBUTED=1 \
#       bash launch/gpu.sh -- --config=... --workdir=/shared/x
#
# Setup is launch/setup.sh with OCR_JAX_EXTRAS=cuda (jax's CUDA 12 wheels;
# OCR_JAX_EXTRAS=cuda13 for CUDA 13). BACKGROUND=LOG runs detached
# (launch/background.sh), e.g. on a spot VM. See docs/scale_out.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -ge 3 ] && [ "$1" != "--" ]; then
  export JAX_COORDINATOR_ADDRESS="$1" JAX_NUM_PROCESSES="$2"
  export JAX_PROCESS_ID="$3" OCR_JAX_DISTRIBUTED=1
  shift 3
fi
if [ "${1:-}" = "--" ]; then shift; fi
export OCR_JAX_EXTRAS="${OCR_JAX_EXTRAS:-cuda}"
if [ -n "${BACKGROUND:-}" ]; then
  exec bash launch/background.sh "$BACKGROUND" ocr_jax.main "$@"
fi
exec bash launch/setup.sh ocr_jax.main "$@"
