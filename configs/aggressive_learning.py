"""aggressive_learning: High learning rate and big batches with a step schedule.

Prototype grid point (docs/prototype.md, "The experiment grid"). Shared with
every grid point: clip at global norm 1.0, early stopping on validation
character accuracy (patience 8, min_delta 0.001), a checkpoint every 5 epochs
keeping 3, a log line every 25 steps.

Command:
  python -m ocr_jax.main --config=configs/aggressive_learning.py \\
      --workdir=runs/aggressive_learning
  (append `:tiny` to the config path for a 1-2 min smoke run)

Expected on 2 CPU cores (its grid run, docs/results.md; test scored on the
best validation state):
  time:     16 of 35 epochs (early stop), 48.3 s/epoch, 15 min wall
  accuracy: validation 14.56 % char / 1.7 % seq (best epoch 8),
            test 14.00 % / 1.8 % (rank 6 of 7: it never leaves the
            early plateau; 31 steps per epoch)
  the prototype, 2 epochs: validation 21.0 % char / 0.0 % seq, 217 s
"""

from configs import base


def get_config(arg=None):
  """Returns the aggressive_learning configuration (arg 'tiny': smoke run)."""
  config = base.get_config()
  config.model = 'medium'
  config.batch_size = 128
  config.learning_rate = 0.003
  config.weight_decay = 0.0002
  config.num_epochs = 35
  config.loss = 'cross_entropy'
  config.label_smoothing = 0.15
  config.optimizer = 'adamw'
  config.schedule = 'step'
  config.step_decay_epochs = 10
  config.step_decay_factor = 0.5
  return base.shrink_if_tiny(config, arg)
