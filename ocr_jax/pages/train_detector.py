"""Trains the line detector on synthetic pages, resuming from checkpoints.

  python -m ocr_jax.pages.train_detector --config=configs/line_detector.py \\
      --workdir=runs/line_detector

Pages come from `khmer_pages.make_page` (train split, without skew: the
pipeline deskews before detecting, so the detector sees straight pages;
noise, light, JPEG and bitonal stay), scaled to `config.page_size` and
padded to a multiple of 16. The run folder is the recogniser's
(`ocr_jax.training.run_folder`): checkpoints/ each epoch (resumed from the
latest), best/ by training loss, metrics.jsonl.
"""

import functools
import time

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np
from ml_collections import config_flags
from PIL import Image

from ocr_jax.data.datasets import khmer_pages
from ocr_jax.pages import detector
from ocr_jax.pages import layout
from ocr_jax.training import run_folder
from ocr_jax.training import train

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Detector config.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'The run folder.')


def training_example(config, index: int):
  """(standardized page [s, s, 3], core map [s/4, s/4]) of page `index`."""
  page = khmer_pages.make_page(config.seed, index, 'train', dpi=config.dpi,
                               skew=False)
  size = config.page_size
  height, width = page.image.shape[:2]
  factor = size / max(height, width)
  image = Image.fromarray(page.image).resize(
      (round(width * factor), round(height * factor)),
      Image.Resampling.BILINEAR)
  canvas = np.full((size, size, 3), 255, np.uint8)
  canvas[:image.size[1], :image.size[0]] = np.asarray(image)
  boxes = [tuple(v * factor for v in box) for box in page.boxes]
  target = layout.core_map(boxes, size, size, scale=detector.SCALE)
  return detector.standardize_page(canvas), target


def train_and_evaluate(config, workdir: str):
  """Trains (resuming from workdir/checkpoints); returns the final state."""
  model = detector.LineDetectorNet(widths=tuple(config.widths))
  state = detector.create_state(model, jax.random.key(config.seed),
                                (config.page_size, config.page_size),
                                config.learning_rate)
  recent, best = run_folder.create_checkpoint_managers(
      workdir, config.keep_checkpoints)
  start = 0
  if recent.latest_step() is not None:
    start = recent.latest_step()
    state, _ = run_folder.restore_checkpoint(recent, start, state)
    logging.info('resumed from epoch %d', start)
  step = jax.jit(functools.partial(detector.train_step,
                                   dice_weight=config.dice_weight))
  # The best loss so far survives a resume (from the epochs' records).
  losses_so_far = [r['loss'] for r in run_folder.read_metrics(workdir)
                   if r['epoch'] <= start]
  best_loss = min(losses_so_far, default=np.inf)
  total = config.num_epochs * config.steps_per_epoch
  for epoch in range(start + 1, config.num_epochs + 1):
    losses, window = [], time.time()
    for k in range(config.steps_per_epoch):
      first = ((epoch - 1) * config.steps_per_epoch + k) * config.batch_size
      pairs = [training_example(config, first + i)
               for i in range(config.batch_size)]
      images = np.stack([p[0] for p in pairs])
      targets = np.stack([p[1] for p in pairs])
      state, loss = step(state, images, targets)
      losses.append(float(loss))
      if (k + 1) % config.log_every_steps == 0:
        rate = config.log_every_steps / (time.time() - window)
        done = (epoch - 1) * config.steps_per_epoch + k + 1
        logging.info('epoch %d/%d step %d/%d loss %.4f %.2f steps/s ETA %s',
                     epoch, config.num_epochs, done, total,
                     np.mean(losses[-config.log_every_steps:]), rate,
                     train.format_eta((total - done) / rate))
        window = time.time()
    mean = float(np.mean(losses))
    logging.info('epoch %d loss %.4f', epoch, mean)
    run_folder.append_metrics(workdir, {'epoch': epoch, 'loss': mean})
    host = {'epoch': epoch, 'loss': mean}
    run_folder.save_checkpoint(recent, epoch, state, host, config)
    if mean < best_loss:
      best_loss = mean
      run_folder.save_checkpoint(best, epoch, state, host, config)
  recent.close()  # Waits for the last saves.
  best.close()
  return state


def main(argv):
  del argv
  train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main)
