"""baseline_optimized: The grid baseline: medium model, AdamW, cosine, warmup.

Prototype grid point (docs/prototype.md, "The experiment grid"). Shared with
every grid point: clip at global norm 1.0, early stopping on validation
character accuracy (patience 8, min_delta 0.001), a checkpoint every 5 epochs
keeping 3, a log line every 25 steps.

Command:
  python -m ocr_jax.main --config=configs/baseline_optimized.py \\
      --workdir=runs/baseline_optimized
  (append `:tiny` to the config path for a 1-2 min smoke run)

Expected on 2 CPU cores (its grid run, docs/results.md; test scored on the
best validation state):
  time:     all 40 epochs, 50.7 s/epoch, 38 min 43 s wall
  accuracy: validation 99.62 % char / 98.4 % seq (best epoch 33),
            test 99.55 % / 98.0 % (rank 3 of 7)
  the prototype, 2 epochs: validation 24.5 % char / 0.0 % seq, 255 s
"""

from configs import base


def get_config(arg=None):
  """Returns the baseline_optimized configuration (arg 'tiny': smoke run)."""
  config = base.get_config()
  config.model = 'medium'
  config.batch_size = 64
  config.learning_rate = 0.002
  config.weight_decay = 0.0001
  config.num_epochs = 40
  config.loss = 'cross_entropy'
  config.label_smoothing = 0.1
  config.optimizer = 'adamw'
  config.schedule = 'cosine'
  config.warmup_epochs = 3.0
  config.min_lr = 1e-06
  return base.shrink_if_tiny(config, arg)
