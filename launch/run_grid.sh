#!/usr/bin/env bash
# Runs the experiment grid from the repository root with the project's venv:
#   bash launch/run_grid.sh --grid_dir=runs/grid [launch.grid flags]
# See `python -m launch.grid --help` for the flags.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .venv/bin/activate ]; then
  . .venv/bin/activate
fi
exec python -m launch.grid "$@"
