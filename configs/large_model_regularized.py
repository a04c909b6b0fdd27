"""large_model_regularized: EfficientNet-B0 large model, strong regularisation.

Prototype grid point (docs/prototype.md, "The experiment grid"). Shared with
every grid point: clip at global norm 1.0, early stopping on validation
character accuracy (patience 8, min_delta 0.001), a checkpoint every 5 epochs
keeping 3, a log line every 25 steps.

Command:
  python -m ocr_jax.main --config=configs/large_model_regularized.py \\
      --workdir=runs/large_model_regularized
  (append `:tiny` to the config path for a 1-2 min smoke run)

Expected on 2 CPU cores (its grid run, docs/results.md; test scored on the
best validation state):
  time:     10 of 30 epochs (early stop), 218.2 s/epoch, 38 min wall
  accuracy: validation 12.47 % char / 1.1 % seq (best epoch 4),
            test 11.26 % / 1.7 % (rank 7 of 7: it never leaves the
            early plateau)
  the prototype, 2 epochs: validation 15.9 % char / 0.0 % seq, 805 s
"""

from configs import base


def get_config(arg=None):
  """Returns the large_model_regularized config (arg 'tiny': smoke run)."""
  config = base.get_config()
  config.model = 'large'
  config.batch_size = 32
  config.learning_rate = 0.0005
  config.weight_decay = 0.0005
  config.num_epochs = 30
  config.loss = 'cross_entropy'
  config.label_smoothing = 0.2
  config.optimizer = 'adamw'
  config.schedule = 'plateau'
  config.plateau_patience = 4
  config.plateau_factor = 0.3
  config.min_lr = 1e-07
  config.grad_clip_norm = 0.5
  config.early_stopping_patience = 6
  config.early_stopping_min_delta = 0.0005
  return base.shrink_if_tiny(config, arg)
