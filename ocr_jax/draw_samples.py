r"""Draws a grid of dataset samples, as the model sees them, with labels.

Every image goes through the input pipeline (decode, resize, pad, optional
augmentation, normalisation), is denormalised for display, cropped to its
true width, and shown above its label decoded back from the label ids (so
the picture also checks the label encoding). Labels are drawn with KhmerOS
through libraqm, like the data.

  python -m ocr_jax.draw_samples --data_dir=/tmp/tfds --out_dir=docs \
      [--augment]

writes docs/samples_<dataset>[_augmented].png for khmer_digits and
khmer_text/{stage1,stage2,stage3,lines}.
"""

import os
from collections.abc import Sequence

from absl import app
from absl import flags
import ml_collections
import numpy as np
from PIL import Image

from ocr_jax.data import input_pipeline
from ocr_jax.data import preprocess
from ocr_jax.data import render
from ocr_jax.text import charset

_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir.')
_OUT_DIR = flags.DEFINE_string('out_dir', 'docs', 'Where PNGs go.')
_CORPUS = flags.DEFINE_string('corpus_path', None,
                              "Corpus for khmer_text (unset: the shipped "
                              "corpus; '': the syllable generator).")
_AUGMENT = flags.DEFINE_bool('augment', False, 'Show augmented images.')
_DATASETS = flags.DEFINE_list(
    'datasets', ['khmer_digits', 'khmer_text/stage1', 'khmer_text/stage2',
                 'khmer_text/stage3', 'khmer_text/lines'], 'Datasets.')

# dataset -> (vocabulary, image_width, max_label_length, columns, rows)
LAYOUTS = {
    'khmer_digits': ('digits', 128, 8, 4, 5),
    'khmer_text/stage1': ('khmer', 256, 5, 4, 5),
    'khmer_text/stage2': ('khmer', 384, 10, 3, 5),
    'khmer_text/stage3': ('khmer', 512, 20, 2, 6),
    'khmer_text/lines': ('khmer', 1024, 64, 1, 7),
}
_LABEL_HEIGHT = 30
_GAP = 6


def sample_config(dataset: str, corpus_path: str | None,
                  augment: bool) -> ml_collections.ConfigDict:
  """The input-pipeline fields for drawing `dataset`."""
  vocabulary, width, max_length, columns, rows = LAYOUTS[dataset]
  return ml_collections.ConfigDict({
      'dataset': dataset, 'corpus_path': corpus_path,
      'vocabulary': vocabulary, 'image_height': 64, 'image_width': width,
      'max_label_length': max_length, 'batch_size': columns * rows,
      'eval_batch_size': columns * rows, 'augment': augment,
      'shuffle_buffer': 512})


def label_image(text: str, width: int) -> np.ndarray:
  """Black text on white, _LABEL_HEIGHT high, scaled down to fit width."""
  font = render.khmeros_fonts()[0].path
  mask = render.text_mask(text or ' ', font, np.random.default_rng(0))
  scale = min((_LABEL_HEIGHT - 2) / mask.shape[0], width / mask.shape[1])
  size = (max(1, int(mask.shape[1] * scale)),
          max(1, int(mask.shape[0] * scale)))
  mask = np.asarray(Image.fromarray(mask).resize(
      size, Image.Resampling.BILINEAR))
  canvas = np.ones((_LABEL_HEIGHT, width), np.float32)
  top = (_LABEL_HEIGHT - size[1]) // 2
  canvas[top:top + size[1], :size[0]] -= np.clip(mask, 0.0, 1.0)
  return np.repeat((canvas * 255).astype(np.uint8)[..., None], 3, axis=2)


def _tile(cells: list[np.ndarray], columns: int) -> np.ndarray:
  """Tiles equal-sized cells row by row, _GAP white pixels apart."""
  cells = cells + [np.full_like(cells[0], 255)] * (-len(cells) % columns)
  padded = [np.pad(c, ((0, _GAP), (0, _GAP), (0, 0)), constant_values=255)
            for c in cells]
  rows = [np.concatenate(padded[i:i + columns], axis=1)
          for i in range(0, len(padded), columns)]
  return np.concatenate(rows, axis=0)[:-_GAP, :-_GAP]


def draw_grid(batch: dict[str, np.ndarray], vocab: charset.Vocabulary,
              columns: int, cell_width: int) -> np.ndarray:
  """Tiles (image over label) cells into a uint8 grid."""
  cells = []
  for i in range(len(batch['width'])):
    width = int(batch['width'][i])
    image = np.full((batch['image'].shape[1], cell_width, 3), 255, np.uint8)
    image[:, :width] = preprocess.to_uint8(batch['image'][i][:, :width])
    text = vocab.decode(batch['labels'][i])
    cells.append(np.concatenate([image, label_image(text, cell_width)]))
  return _tile(cells, columns)


def draw_dataset(dataset: str, data_dir: str, out_dir: str,
                 corpus_path: str | None, augment: bool) -> str:
  """Writes the grid PNG of one dataset; returns its path."""
  config = sample_config(dataset, corpus_path, augment)
  if augment:
    batch = next(input_pipeline.create_train_iterator(config,
                                                      data_dir=data_dir))
  else:
    batch = next(iter(input_pipeline.create_eval_dataset(
        config, 'validation', data_dir=data_dir)))
  vocab = charset.get_vocabulary(config.vocabulary)
  columns = LAYOUTS[dataset][3]
  grid = draw_grid(batch, vocab, columns, config.image_width)
  name = dataset.replace('/', '_') + ('_augmented' if augment else '')
  path = os.path.join(out_dir, f'samples_{name}.png')
  # A 256-colour palette keeps the noisy backgrounds small on disk.
  Image.fromarray(grid).quantize(256).save(path, optimize=True)
  return path


def main(argv: Sequence[str]) -> None:
  del argv
  os.makedirs(_OUT_DIR.value, exist_ok=True)
  for dataset in _DATASETS.value:
    path = draw_dataset(dataset, _DATA_DIR.value, _OUT_DIR.value,
                        _CORPUS.value, _AUGMENT.value)
    print(f'{path}: {os.path.getsize(path) / 1024:.0f} KB')


if __name__ == '__main__':
  flags.mark_flag_as_required('data_dir')
  app.run(main)
