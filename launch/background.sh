#!/usr/bin/env bash
# Runs `bash launch/setup.sh MODULE FLAGS...` detached from the terminal, so
# that it survives the end of an ssh session; logs to LOG and writes its pid
# to LOG.pid and, when it ends, its exit status to LOG.status:
#   bash launch/background.sh ~/train.log ocr_jax.main --config=C --workdir=W
#   tail --pid="$(cat ~/train.log.pid)" -n +1 -f ~/train.log
# The environment (OCR_JAX_EXTRAS, OCR_JAX_DISTRIBUTED...) passes through.
set -euo pipefail
cd "$(dirname "$0")/.."
LOG="$1"
shift
rm -f "$LOG.status"
: > "$LOG"  # There before this script returns, for a `tail -f` right after.
# setsid: its own session, so the hang-up of the ssh session does not reach
# it; SIGTERM (a preemption notice) still does.
nohup setsid bash -c 'bash launch/setup.sh "$@"; echo $? > "$0.status"' \
    "$LOG" "$@" >> "$LOG" 2>&1 < /dev/null &
echo $! > "$LOG.pid"
