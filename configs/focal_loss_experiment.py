"""focal_loss_experiment: Focal loss instead of cross-entropy, medium model.

Prototype grid point (docs/prototype.md, "The experiment grid"). Shared with
every grid point: clip at global norm 1.0, early stopping on validation
character accuracy (patience 8, min_delta 0.001), a checkpoint every 5 epochs
keeping 3, a log line every 25 steps.

Command:
  python -m ocr_jax.main --config=configs/focal_loss_experiment.py \\
      --workdir=runs/focal_loss_experiment
  (append `:tiny` to the config path for a 1-2 min smoke run)

Expected on 2 CPU cores (its grid run, docs/results.md; test scored on the
best validation state):
  time:     all 40 epochs, 48.7 s/epoch, 38 min 35 s wall
  accuracy: validation 99.49 % char / 97.9 % seq (best epoch 35),
            test 99.42 % / 97.6 % (rank 4 of 7)
  the prototype, 2 epochs: validation 23.4 % char / 0.0 % seq, 235 s
"""

from configs import base


def get_config(arg=None):
  """Returns the focal_loss_experiment configuration (arg 'tiny': smoke run)."""
  config = base.get_config()
  config.model = 'medium'
  config.batch_size = 64
  config.learning_rate = 0.0015
  config.weight_decay = 0.0001
  config.num_epochs = 40
  config.loss = 'focal'
  config.optimizer = 'adamw'
  config.schedule = 'cosine'
  config.warmup_epochs = 2.0
  config.min_lr = 1e-06
  config.focal_alpha = 1.0
  config.focal_gamma = 2.0
  return base.shrink_if_tiny(config, arg)
