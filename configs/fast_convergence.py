"""fast_convergence: Very high learning rate, short cosine run, early stopping.

Prototype grid point (docs/prototype.md, "The experiment grid"). Shared with
every grid point: clip at global norm 1.0, early stopping on validation
character accuracy (patience 8, min_delta 0.001), a checkpoint every 5 epochs
keeping 3, a log line every 25 steps.

Command:
  python -m ocr_jax.main --config=configs/fast_convergence.py \\
      --workdir=runs/fast_convergence
  (append `:tiny` to the config path for a 1-2 min smoke run)

Expected on 2 CPU cores (its grid run, docs/results.md; test scored on the
best validation state):
  time:     all 25 epochs, 53.9 s/epoch, 25 min wall
  accuracy: validation 20.02 % char / 5.5 % seq (best epoch 23),
            test 19.73 % / 5.8 % (rank 5 of 7: it never leaves the
            early plateau)
  the prototype, 2 epochs: validation 19.3 % char / 0.0 % seq, 245 s
"""

from configs import base


def get_config(arg=None):
  """Returns the fast_convergence configuration (arg 'tiny': smoke run)."""
  config = base.get_config()
  config.model = 'medium'
  config.batch_size = 96
  config.learning_rate = 0.005
  config.weight_decay = 0.0001
  config.num_epochs = 25
  config.loss = 'cross_entropy'
  config.label_smoothing = 0.1
  config.optimizer = 'adamw'
  config.schedule = 'cosine'
  config.warmup_epochs = 2.0
  config.min_lr = 1e-06
  config.early_stopping_patience = 5
  config.early_stopping_min_delta = 0.002
  return base.shrink_if_tiny(config, arg)
