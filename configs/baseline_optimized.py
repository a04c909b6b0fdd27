"""baseline_optimized: The grid baseline: medium model, AdamW, cosine schedule with warmup.

Prototype grid point (../shared/SEED_FACTS.md, Phase 3.1). Shared with every
grid point: clip at global norm 1.0, early stopping on validation character
accuracy (patience 8, min_delta 0.001), a checkpoint every 5 epochs keeping 3,
a log line every 25 steps.

  python -m ocr_jax.main --config=configs/baseline_optimized.py --workdir=runs/baseline_optimized
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
