"""conservative_small: The prototype's best point: small model, Adam, plateau.

Prototype grid point (docs/prototype.md, "The experiment grid"). Shared with
every grid point: clip at global norm 1.0, early stopping on validation
character accuracy (patience 8, min_delta 0.001), a checkpoint every 5 epochs
keeping 3, a log line every 25 steps.

Command:
  python -m ocr_jax.main --config=configs/conservative_small.py \\
      --workdir=runs/conservative_small
  (append `:tiny` to the config path for a 1-2 min smoke run)

Expected on 2 CPU cores (its grid run, docs/results.md; test scored on the
best validation state):
  time:     34 of 50 epochs (early stop), 39.5 s/epoch, 14 s compile,
            27 min wall
  accuracy: validation 99.84 % char / 99.3 % seq (best epoch 26),
            test 99.80 % / 99.2 % (rank 2 of 7; the shipped
            khmer-digits model)
  the prototype, 2 epochs: validation 31.2 % char / 5.1 % seq, 239 s
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
