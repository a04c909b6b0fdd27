"""TFDS builder `khmer_digits`: strings of 1-8 Khmer digits, 64 x 128.

The prototype study's task (docs/prototype.md, "Khmer digit strings"). Each
example is a 64 x 128 RGB image of 1-8 digits U+17E0..U+17E9 drawn in
one of the 8 KhmerOS fonts (`render.KHMEROS_FONTS`), scaled to fit, centred
with a small random offset and padded by a procedural background.

Features:
  image:  uint8 [64, 128, 3], stored as PNG.
  text:   the digit string (already normalised).
  font:   the font family name.
  length: int32, number of digits.
  text_box: int32 [4], the ink bounding box [x0, y0, x1, y1) in pixels
          (lets augmentation zoom in without cutting the text).

Splits: train 4,000 / validation 1,000 / test 1,000. Every example is drawn
from its own generator seeded by (seed, split, index), so the same version
and seed give byte-identical records, in any order of generation.

Usage:
  builder = tfds.builder('khmer_digits', data_dir=data_dir)
  builder.download_and_prepare()   # renders locally; downloads nothing
  Builder kwargs: `seed` (default 0) and `split_sizes` (e.g. {'train': 64}
  for tests); non-default values must go to their own data_dir.
"""

from collections.abc import Iterator, Mapping, Sequence

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from ocr_jax.text import charset
from ocr_jax.data import render

SPLIT_SIZES = {'train': 4000, 'validation': 1000, 'test': 1000}
# Fixed split ids feed the per-example seeds (never hash() of a str, which
# is salted per process).
SPLIT_IDS = {'train': 0, 'validation': 1, 'test': 2}
IMAGE_HEIGHT = 64
IMAGE_WIDTH = 128
MAX_DIGITS = 8


def example_rng(seed: int, split: str, index: int) -> np.random.Generator:
  """The generator of one example, a function of (seed, split, index) only."""
  return np.random.default_rng([seed, SPLIT_IDS[split], index])


def make_example(seed: int, split: str, index: int,
                 fonts: Sequence[render.Font]) -> dict[str, object]:
  """Renders example `index` of `split` (a dict of feature values)."""
  rng = example_rng(seed, split, index)
  length = int(rng.integers(1, MAX_DIGITS + 1))
  digits = rng.integers(0, 10, size=length)
  text = ''.join(charset.KHMER_DIGITS[d] for d in digits)
  font = fonts[int(rng.integers(len(fonts)))]
  image, alpha = render.render_text_and_alpha(
      text, font.path, rng, height=IMAGE_HEIGHT, width=IMAGE_WIDTH)
  return {'image': image, 'text': text, 'font': font.family,
          'length': np.int32(length), 'text_box': render.ink_box(alpha)}


class KhmerDigits(tfds.core.GeneratorBasedBuilder):
  """Synthetic Khmer digit strings rendered in the KhmerOS fonts."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # The default probes the `importlib_resources` package, which
    # tensorflow-datasets does not declare; this file is the answer anyway.
    return epath.Path(__file__)

  def __init__(self, *, seed: int = 0,
               split_sizes: Mapping[str, int] | None = None, **kwargs):
    unknown = set(split_sizes or {}) - set(SPLIT_SIZES)
    if unknown:
      raise ValueError(f'unknown splits {sorted(unknown)}')
    self._seed = seed
    self._split_sizes = {**SPLIT_SIZES, **(split_sizes or {})}
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(
                shape=(IMAGE_HEIGHT, IMAGE_WIDTH, 3), encoding_format='png'),
            'text': tfds.features.Text(),
            'font': tfds.features.Text(),
            'length': tfds.features.Scalar(np.int32),
            'text_box': tfds.features.Tensor(shape=(4,), dtype=np.int32),
        }),
        supervised_keys=('image', 'text'),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Everything is rendered locally.
    return {split: self._generate_examples(split, size)
            for split, size in self._split_sizes.items()}

  def _generate_examples(self, split: str,
                         num_examples: int) -> Iterator[tuple[int, dict]]:
    fonts = render.khmeros_fonts()
    for index in range(num_examples):
      yield index, make_example(self._seed, split, index, fonts)
