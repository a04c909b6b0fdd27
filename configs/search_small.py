"""A small hyperparameter search around the prototype's best grid point.

conservative_small led the prototype's study; this space varies its learning
rate, batch size and optimizer. The full grid is 3 x 3 x 2 = 18 runs; a
seeded random search draws K of the same space (learning rate log-uniform):

Command:
  python -m launch.grid --grid_dir=runs/search --search=configs/search_small.py
  python -m launch.grid --grid_dir=runs/search_r \\
      --search=configs/search_small.py --search_mode=random --num_samples=6 \\
      --search_seed=0
  python -m ocr_jax.report --grid_dir=runs/search

Each sample becomes a run named from its values, e.g.
conservative_small-lr0.001-bs32-adamw.

Expected on 2 CPU cores (an estimate: this search has not been run):
  time:     each run is a conservative_small run, which took 39.5 s/epoch
            and 27 min to its early stop at epoch 34 (docs/results.md);
            batch 16 has twice the steps per epoch and is likely slower.
            So roughly 8-12 h for the 18-run grid, 3-4 h for 6 samples.
  accuracy: the centre point (lr 0.001, batch 32, adam) is
            conservative_small itself: 99.80 % test character and 99.2 %
            sequence accuracy; how far the others move from it is what the
            search measures.
"""

from typing import Any


def get_search_space() -> dict[str, Any]:
  """Returns the search space read by launch.grid.

  Keys: 'base' (experiment name, configs/<base>.py), 'overrides' (fixed
  config values for every sample) and 'params', an ordered mapping from a
  config key to its distribution: {'type': 'choice', 'values': [...]} or
  {'type': 'uniform' | 'log_uniform', 'low', 'high', 'grid': [...]} ('grid'
  lists the values of the cartesian grid mode). 'short' names the key in run
  names ('' writes the bare value).
  """
  return {
      'base': 'conservative_small',
      'overrides': {},
      'params': {
          'learning_rate': {
              'type': 'log_uniform', 'low': 5e-4, 'high': 2e-3,
              'grid': [5e-4, 1e-3, 2e-3], 'short': 'lr'},
          'batch_size': {
              'type': 'choice', 'values': [16, 32, 48], 'short': 'bs'},
          'optimizer': {
              'type': 'choice', 'values': ['adam', 'adamw'], 'short': ''},
      },
  }
