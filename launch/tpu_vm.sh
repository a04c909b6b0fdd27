#!/usr/bin/env bash
# Trains on a Cloud TPU VM: create, copy the code, set up every worker, run
# the same command on every worker, stream the log, fetch the run, delete.
#
#   ZONE=us-west4-a launch/tpu_vm.sh all -- \
#       --config=configs/conservative_small.py --workdir=runs/conservative_small
#
# Steps (each also runs alone, e.g. after a preemption: `run` then `logs`):
#   create  gcloud compute tpus tpu-vm create (SPOT=1 for a spot VM)
#   copy    the working tree (git-tracked and untracked, not ignored files)
#           to ~/ocr_jax on --worker=all
#   setup   launch/setup.sh on --worker=all (idempotent: fonts, venv,
#           pip install -e '.[tpu]')
#   run     the same `python -m ocr_jax.main ARGS` on --worker=all, detached
#           (launch/background.sh), OCR_JAX_DISTRIBUTED=1 so that multi-host
#           slices join through jax.distributed.initialize()
#   logs    streams worker 0's log until its run ends; prints its exit status
#           (143: stopped by SIGTERM after saving; `run` again resumes)
#   fetch   copies the workdir from worker 0 into ./runs/ (not for gs://)
#   delete  deletes the TPU VM
#   all     create copy setup run logs fetch delete (KEEP=1 keeps the VM)
#
# Environment: ZONE (required), TPU_NAME (ocr-jax), ACCELERATOR_TYPE
# (v5litepod-8 = v5e-8; v4-8 ...), TPU_VERSION (runtime; default from the
# accelerator: v2-alpha-tpuv5-lite for v5e, tpu-ubuntu2204-base for v4 --
# the current names in the Cloud TPU docs, not the stale plain 'v2-alpha'),
# PROJECT (gcloud's default project if unset), SPOT=1, KEEP=1.
#
# Workdirs: a path relative to ~/ocr_jax on the workers. One-host slices
# (v5e-8, v4-8) write it on worker 0 and `fetch` copies it back. gs:// is
# NOT supported as the workdir: orbax and TFDS read and write gs:// paths,
# but the run folder's record files (metrics.jsonl, results.json,
# samples.png) use plain file I/O. Multi-host slices (v4-16, v5e-16 ...)
# need one workdir that every worker sees, for orbax's checkpoints: mount a
# bucket with gcsfuse at the same path on every worker and pass that path.
# See docs/scale_out.md.
set -euo pipefail
cd "$(dirname "$0")/.."

STEP="${1:-}"
shift || true
if [ "${1:-}" = "--" ]; then shift; fi
ARGS=("$@")

: "${ZONE:?set ZONE, e.g. ZONE=us-west4-a (v5e) or us-central2-b (v4)}"
TPU_NAME="${TPU_NAME:-ocr-jax}"
ACCELERATOR_TYPE="${ACCELERATOR_TYPE:-v5litepod-8}"
case "$ACCELERATOR_TYPE" in
  v5litepod-*) DEFAULT_VERSION=v2-alpha-tpuv5-lite ;;
  v5p-*) DEFAULT_VERSION=v2-alpha-tpuv5 ;;
  v6e-*) DEFAULT_VERSION=v2-alpha-tpuv6e ;;
  *) DEFAULT_VERSION=tpu-ubuntu2204-base ;;
esac
TPU_VERSION="${TPU_VERSION:-$DEFAULT_VERSION}"
GCLOUD_FLAGS=(--zone="$ZONE")
if [ -n "${PROJECT:-}" ]; then GCLOUD_FLAGS+=(--project="$PROJECT"); fi
REMOTE_DIR=ocr_jax
# Unquoted in the remote commands: the workers' shells expand the ~.
LOG='~/ocr_jax_train.log'

ssh_workers() {  # ssh_workers WORKER COMMAND
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${GCLOUD_FLAGS[@]}" \
      --worker="$1" --command="$2"
}

workdir_arg() {
  local arg
  for arg in "${ARGS[@]}"; do
    case "$arg" in --workdir=*) echo "${arg#--workdir=}"; return ;; esac
  done
  echo "give --workdir=... after --" >&2
  return 1
}

create() {
  local extra=()
  if [ "${SPOT:-0}" = 1 ]; then extra+=(--spot); fi
  gcloud compute tpus tpu-vm create "$TPU_NAME" "${GCLOUD_FLAGS[@]}" \
      --accelerator-type="$ACCELERATOR_TYPE" --version="$TPU_VERSION" \
      "${extra[@]}"
}

copy() {
  local tarball
  tarball="$(mktemp -d)/ocr_jax.tar.gz"
  git ls-files -z --cached --others --exclude-standard \
      | tar -czf "$tarball" --null -T -
  gcloud compute tpus tpu-vm scp "$tarball" "$TPU_NAME:~/ocr_jax.tar.gz" \
      "${GCLOUD_FLAGS[@]}" --worker=all
  # Extracted over the old copy: the venv (ignored by git) stays.
  ssh_workers all "mkdir -p ~/$REMOTE_DIR && tar -xzf ~/ocr_jax.tar.gz \
      -C ~/$REMOTE_DIR && rm ~/ocr_jax.tar.gz"
  rm -r "$(dirname "$tarball")"
}

setup() {
  ssh_workers all "cd ~/$REMOTE_DIR && OCR_JAX_EXTRAS=tpu bash launch/setup.sh"
}

run() {
  local quoted
  workdir_arg >/dev/null
  quoted="$(printf '%q ' "${ARGS[@]}")"
  # The same command on every worker, detached (launch/background.sh).
  ssh_workers all "cd ~/$REMOTE_DIR && OCR_JAX_EXTRAS=tpu \
      OCR_JAX_DISTRIBUTED=1 bash launch/background.sh $LOG \
      ocr_jax.main $quoted"
}

logs() {
  ssh_workers 0 "tail --pid=\"\$(cat $LOG.pid)\" -n +1 -f $LOG; \
      echo \"exit status: \$(cat $LOG.status 2>/dev/null || echo unknown)\""
}

fetch() {
  local workdir
  workdir="$(workdir_arg)"
  case "$workdir" in
    gs://*) echo "the workdir is in GCS: gcloud storage cp -r $workdir runs/";
            return ;;
  esac
  mkdir -p runs
  gcloud compute tpus tpu-vm scp --recurse \
      "$TPU_NAME:~/$REMOTE_DIR/$workdir" runs/ "${GCLOUD_FLAGS[@]}" --worker=0
}

delete() {
  gcloud compute tpus tpu-vm delete "$TPU_NAME" "${GCLOUD_FLAGS[@]}" --quiet
}

case "$STEP" in
  create|copy|setup|run|logs|fetch|delete) "$STEP" ;;
  all)
    workdir_arg >/dev/null
    create
    if [ "${KEEP:-0}" != 1 ]; then trap delete EXIT; fi
    copy
    setup
    run
    logs
    fetch
    ;;
  *)
    sed -n '2,36p' "$0"
    exit 2
    ;;
esac
