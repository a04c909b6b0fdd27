"""large_model_regularized: EfficientNet-B0 large model, strong regularisation.

Prototype grid point (../shared/SEED_FACTS.md, Phase 3.1). Shared with every
grid point: clip at global norm 1.0, early stopping on validation character
accuracy (patience 8, min_delta 0.001), a checkpoint every 5 epochs keeping 3,
a log line every 25 steps.

  python -m ocr_jax.main --config=configs/large_model_regularized.py --workdir=runs/large_model_regularized
"""

from configs import base


def get_config(arg=None):
  """Returns the large_model_regularized configuration (arg 'tiny': smoke run)."""
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
