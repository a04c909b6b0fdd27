"""The prototype's 7-experiment grid, one config file per point.

Documentation and input of the grid runner. Each point is a file
configs/<name>.py that starts from configs/base.py; the shared settings (clip
at global norm 1.0, early stopping on validation character accuracy, a
checkpoint every 5 epochs) live there.

Command (runs all 7, one after another, each in runs/grid/<name>, then ranks
them):
  python -m launch.grid --grid_dir=runs/grid
  python -m ocr_jax.report --grid_dir=runs/grid

Expected on 2 CPU cores (docs/results.md, "The grid"):
  time:     about 3 h 35 min of training for all 7 (4 h 05 min wall with a
            29 min pause); 15-39 min per run (ctc_alignment_free: 34 min
            of training)
  accuracy: test char / seq accuracy on the best validation state:
            ctc_alignment_free 99.91 / 99.6 %, conservative_small
            99.80 / 99.2 %, baseline_optimized 99.55 / 98.0 %,
            focal_loss_experiment 99.42 / 97.6 %; fast_convergence,
            aggressive_learning and large_model_regularized stay on the
            early plateau (11-20 % char, under 6 % seq)

`--tiny` makes every point a 1-2 min smoke run; `--override
num_epochs=2` reproduces the prototype's 2-epoch study (its numbers are in
docs/prototype.md: conservative_small led with 31.2 % validation character
accuracy, ctc_alignment_free failed).
"""

from collections.abc import Callable

# In the order of the prototype's table.
EXPERIMENTS = (
    'baseline_optimized',
    'aggressive_learning',
    'conservative_small',
    'focal_loss_experiment',
    'ctc_alignment_free',
    'large_model_regularized',
    'fast_convergence',
)


def sweep(add: Callable[..., None]) -> None:
  """Calls `add(name=..., config=...)` once per grid point.

  Args:
    add: receives the run name (also its workdir name) and the config file,
      relative to the repository root.
  """
  for name in EXPERIMENTS:
    add(name=name, config=f'configs/{name}.py')


def get_runs() -> list[dict[str, str]]:
  """Returns the grid as a list of {'name', 'config'} dicts."""
  runs = []
  sweep(lambda **run: runs.append(run))
  return runs
