"""conservative_small: The prototype's best point: small model, Adam, reduce-on-plateau.

Prototype grid point (../shared/SEED_FACTS.md, Phase 3.1). Shared with every
grid point: clip at global norm 1.0, early stopping on validation character
accuracy (patience 8, min_delta 0.001), a checkpoint every 5 epochs keeping 3,
a log line every 25 steps.

  python -m ocr_jax.main --config=configs/conservative_small.py --workdir=runs/conservative_small
"""

from configs import base


def get_config(arg=None):
  """Returns the conservative_small configuration (arg 'tiny': smoke run)."""
  config = base.get_config()
  config.model = 'small'
  config.batch_size = 32
  config.learning_rate = 0.001
  config.weight_decay = 0.0001
  config.num_epochs = 50
  config.loss = 'cross_entropy'
  config.label_smoothing = 0.05
  config.optimizer = 'adam'
  config.schedule = 'plateau'
  config.plateau_patience = 5
  config.plateau_factor = 0.5
  config.min_lr = 1e-07
  return base.shrink_if_tiny(config, arg)
