"""The line detector (issue #13): LineDetectorNet on synthetic pages.

  python -m ocr_jax.pages.train_detector --config=configs/line_detector.py \\
      --workdir=runs/line_detector
  (tiny, for tests: --config=configs/line_detector.py:tiny)

Not trained yet: wall time on 2 cores and detection F1 to be measured
(target F1 >= 0.98 clean, >= 0.95 degraded; benchmarks/page_benchmark.py).
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  # Channels at 1/2, 1/4, 1/8, 1/16 of the page.
  config.widths = (16, 32, 48, 64)
  # Longer side of the training (and detection) page, in pixels.
  config.page_size = 1024
  # Resolution the synthetic pages are rendered at.
  config.dpi = 150
  # Pages per step.
  config.batch_size = 4
  # Steps per epoch (a checkpoint each epoch) and epochs.
  config.steps_per_epoch = 250
  config.num_epochs = 40
  config.learning_rate = 2e-3
  # Weight of the dice term of the loss.
  config.dice_weight = 1.0
  # Data seed of the synthetic pages; the training pages are indices 0...
  config.seed = 0
  # Progress is logged every this many steps.
  config.log_every_steps = 25
  # Checkpoints kept for resuming.
  config.keep_checkpoints = 2
  if arg == 'tiny':
    config.widths = (4, 8, 8, 8)
    config.page_size = 128
    config.dpi = 40
    config.batch_size = 1
    config.steps_per_epoch = 2
    config.num_epochs = 1
    config.log_every_steps = 1
  return config
