"""The line detector (issue #13): LineDetectorNet on synthetic pages.

  python -m ocr_jax.pages.train_detector --config=configs/line_detector.py \\
      --workdir=runs/line_detector
  (tiny, for tests: --config=configs/line_detector.py:tiny)

Measured (2026-12-02, 2 shared CPU cores): about 11 s per step of 4 pages
(page rendering, 0.4 s a page, runs in the step's process), so an epoch of
250 steps takes about 45 min. Epoch 1 is shipped
(ocr_jax/pretrained/line-detector.msgpack, map threshold 0.8 chosen on
validation pages); epoch 2 found lines worse on validation pages and the run
was stopped. With `ocr_jax.pages.layout`'s post-processing, on 10 held-out
A4 pages at 200 dpi (benchmarks/page_benchmark.py): line F1 at IoU 0.5 0.978
clean, 0.975 degraded (targets 0.98 and 0.95); page CER 6.4 % / 6.8 %.
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
