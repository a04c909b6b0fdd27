"""focal_loss_experiment: Focal loss instead of cross-entropy on the medium model.

Prototype grid point (../shared/SEED_FACTS.md, Phase 3.1). Shared with every
grid point: clip at global norm 1.0, early stopping on validation character
accuracy (patience 8, min_delta 0.001), a checkpoint every 5 epochs keeping 3,
a log line every 25 steps.

  python -m ocr_jax.main --config=configs/focal_loss_experiment.py --workdir=runs/focal_loss_experiment
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
