"""TFDS builder `khmer_text`: Khmer text images, height 64.

Configs (the prototype's curriculum, plus whole lines):
  stage1: the 30 most frequent characters, 1-5 characters long.
  stage2: the 60 most frequent characters, 1-10 characters long.
  stage3: all characters, 1-20 characters long.
  lines:  whole corpus lines (up to 64 characters).
The stage configs hold 4,000 / 500 / 500 examples; `lines` holds every
corpus line of each split (or 4,000 / 250 / 250 generated lines, 10-64
characters long).

Text source, the builder kwarg `corpus_path`:
  None (the default)  the shipped corpus, `khmer_corpus.DEFAULT_CORPUS`
                      (ocr_jax/data/corpus/khm_lines.txt: Tesseract langdata,
                      Apache-2.0; see the README.md beside it);
  a path              another corpus file (UTF-8, one line per line);
  '' (`GENERATOR`)    no corpus: the procedural syllable generator
                      (`syllables.py`).
For example

  tfds.builder('khmer_text/lines', data_dir=data_dir)   # shipped corpus
  tfds.builder('khmer_text/stage1', data_dir=data_dir, corpus_path='')

The same corpus file (or the generator) and seed give the same examples,
whichever way the corpus is named.
Each line is normalised (`normalize_khmer`) and assigned to a split by the
SHA-1 of the normalised line (90 / 5 / 5, `khmer_corpus.line_split`), so a
test line never feeds training in any config. The stage configs draw their texts from runs of whole
syllable clusters of the lines of the split (uniform over lengths, then over
the distinct texts of that length) whose characters are all among the
stage's top-N characters by corpus frequency. Short texts (a single
consonant) naturally occur in several splits; whole lines do not.

The data depends on the corpus, which is not part of the data_dir path: the
corpus SHA-1 is stored in the dataset metadata (`corpus_sha1`, '' for the
generator) and `input_pipeline.ensure_built` refuses a mismatch.

The stage configs are the curriculum the prototype planned for full Khmer
text (docs/prototype.md, "Full Khmer text").

Features:
  image:  uint8 [64, width, 3], PNG; the text is scaled to height 64.
  width:  int32, the image width in pixels.
  text:   the normalised label.
  font:   the font family name.
  length: int32, number of code points of `text`.
  text_box: int32 [4], the ink bounding box [x0, y0, x1, y1) in pixels.
"""

import collections
from collections.abc import Iterator, Mapping, Sequence
import dataclasses

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from ocr_jax.text import khmer_normalizer
from ocr_jax.data import khmer_corpus
from ocr_jax.data import render
from ocr_jax.data.datasets import khmer_digits
from ocr_jax.data.datasets import syllables

# The corpus_path that selects the syllable generator instead of a corpus.
GENERATOR = ''
IMAGE_HEIGHT = 64
MAX_LINE_LENGTH = 64


@dataclasses.dataclass(eq=False)
class KhmerTextConfig(tfds.core.BuilderConfig):
  """A curriculum stage or whole lines.

  Attributes:
    top_k: keep only the top_k most frequent characters (None: all).
    min_length: shortest text in code points.
    max_length: longest text in code points.
    whole_lines: use whole corpus lines instead of runs of clusters.
    split_sizes: examples per split (for whole lines from a corpus: the
      most lines used per split).
  """
  top_k: int | None = None
  min_length: int = 1
  max_length: int = 20
  whole_lines: bool = False
  split_sizes: tuple[tuple[str, int], ...] = (
      ('train', 4000), ('validation', 500), ('test', 500))


def _stage(name, top_k, max_length):
  return KhmerTextConfig(
      name=name, top_k=top_k, max_length=max_length,
      description=(f'top-{top_k or "all"} characters, 1-{max_length} long'))


CONFIGS = (
    _stage('stage1', 30, 5),
    _stage('stage2', 60, 10),
    _stage('stage3', None, 20),
    KhmerTextConfig(
        name='lines', whole_lines=True, min_length=1,
        max_length=MAX_LINE_LENGTH,
        split_sizes=(('train', 4000), ('validation', 250), ('test', 250)),
        description='whole lines, up to 64 characters'),
)


def char_ranking(lines: Sequence[str]) -> str:
  """All characters of the lines, most frequent first (ties by code point)."""
  counts = collections.Counter(''.join(lines))
  return ''.join(sorted(counts, key=lambda c: (-counts[c], c)))


def cluster_runs(lines: Sequence[str], allowed: set[str], min_length: int,
                 max_length: int) -> dict[int, list[str]]:
  """Distinct runs of whole clusters, grouped by length, in corpus order.

  A run neither starts nor ends with a space, starts with a base character
  (not a mark) and uses only `allowed` characters.
  """
  runs = {}
  for line in lines:
    clusters = khmer_normalizer.split_clusters(line)
    for start, first in enumerate(clusters):
      if first == ' ' or khmer_normalizer.char_category(first[0]) not in (
          khmer_normalizer.BASE, khmer_normalizer.OTHER):
        continue
      text = ''
      for cluster in clusters[start:]:
        text += cluster
        if len(text) > max_length or not allowed.issuperset(cluster):
          break
        if cluster != ' ' and len(text) >= min_length:
          runs.setdefault(len(text), {})[text] = None
  return {length: list(texts) for length, texts in sorted(runs.items())}


def _texts_rng(seed: int, split: str) -> np.random.Generator:
  # A stream of its own: spawn_key (1,) keeps it apart from the
  # per-example generators seeded by (seed, split, index).
  return np.random.default_rng(np.random.SeedSequence(
      [seed, khmer_digits.SPLIT_IDS[split]], spawn_key=(1,)))


def _sample_runs(runs: dict[int, list[str]], size: int,
                 rng: np.random.Generator) -> list[str]:
  """`size` texts: a uniform length, then a uniform text of that length."""
  lengths = list(runs)
  texts = []
  for _ in range(size):
    pool = runs[lengths[int(rng.integers(len(lengths)))]]
    texts.append(pool[int(rng.integers(len(pool)))])
  return texts


def corpus_texts(config: KhmerTextConfig, split: str, lines: Sequence[str],
                 size: int | None, rng: np.random.Generator) -> list[str]:
  """The texts of one split drawn from normalised corpus lines."""
  split_lines = [line for line in lines
                 if khmer_corpus.line_split(line) == split]
  if config.whole_lines:
    texts = [line for line in split_lines
             if config.min_length <= len(line) <= config.max_length]
    return texts if size is None else texts[:size]
  allowed = set(char_ranking(lines)[:config.top_k])
  runs = cluster_runs(split_lines, allowed, config.min_length,
                      config.max_length)
  if not runs:
    raise ValueError(f'the corpus holds no {split} text for {config.name}')
  if size is None:
    size = dict(config.split_sizes)[split]
  return _sample_runs(runs, size, rng)


def generated_texts(config: KhmerTextConfig, split: str, size: int,
                    rng: np.random.Generator) -> list[str]:
  """The texts of one split from the syllable generator (no corpus)."""
  allowed = None
  if config.top_k:
    allowed = set(syllables.DEFAULT_CHAR_RANKING[:config.top_k])
  if not config.whole_lines:
    return [syllables.generate_text(rng, config.min_length,
                                    config.max_length, allowed=allowed)
            for _ in range(size)]
  # Generated lines are 10-64 long and split by hash like corpus lines.
  texts = []
  while len(texts) < size:
    text = syllables.generate_text(rng, max(10, config.min_length),
                                   config.max_length, allowed=allowed)
    if khmer_corpus.line_split(text) == split:
      texts.append(text)
  return texts


class KhmerText(tfds.core.GeneratorBasedBuilder):
  """Khmer text from a corpus or a syllable generator, height 64."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = list(CONFIGS)

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # The default probes the `importlib_resources` package, which
    # tensorflow-datasets does not declare; this file is the answer anyway.
    return epath.Path(__file__)

  def __init__(self, *, corpus_path: str | None = None, seed: int = 0,
               split_sizes: Mapping[str, int] | None = None, **kwargs):
    unknown = set(split_sizes or {}) - set(khmer_corpus.SPLITS)
    if unknown:
      raise ValueError(f'unknown splits {sorted(unknown)}')
    self._corpus_path = khmer_corpus.resolve_corpus(corpus_path)
    self._seed = seed
    self._split_sizes = dict(split_sizes or {})
    super().__init__(**kwargs)

  @property
  def corpus_path(self) -> str:
    """The corpus file used; '' for the syllable generator."""
    return self._corpus_path

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(
                shape=(IMAGE_HEIGHT, None, 3), encoding_format='png'),
            'width': tfds.features.Scalar(np.int32),
            'text': tfds.features.Text(),
            'font': tfds.features.Text(),
            'length': tfds.features.Scalar(np.int32),
            'text_box': tfds.features.Tensor(shape=(4,), dtype=np.int32),
        }),
        supervised_keys=('image', 'text'),
        metadata=tfds.core.MetadataDict(),
    )

  def _split_size(self, split: str) -> int | None:
    if split in self._split_sizes:
      return self._split_sizes[split]
    if self.builder_config.whole_lines and self._corpus_path:
      return None  # Every corpus line of the split.
    return dict(self.builder_config.split_sizes)[split]

  def _split_generators(self, dl_manager):
    del dl_manager  # Everything is rendered locally.
    config = self.builder_config
    lines = None
    if self._corpus_path:
      lines = khmer_corpus.read_corpus(self._corpus_path)
    self.info.metadata['corpus_sha1'] = khmer_corpus.corpus_sha1(
        self._corpus_path)
    generators = {}
    for split in khmer_corpus.SPLITS:
      rng = _texts_rng(self._seed, split)
      size = self._split_size(split)
      if lines is None:
        texts = generated_texts(config, split, size, rng)
      else:
        texts = corpus_texts(config, split, lines, size, rng)
      generators[split] = self._generate_examples(split, texts)
    return generators

  def _generate_examples(self, split: str,
                         texts: Sequence[str]) -> Iterator[tuple[int, dict]]:
    fonts = render.khmeros_fonts()
    for index, text in enumerate(texts):
      usable = render.fonts_for_text(fonts, text)
      if not usable:
        continue  # No font can draw it without missing-glyph boxes.
      rng = khmer_digits.example_rng(self._seed, split, index)
      font = usable[int(rng.integers(len(usable)))]
      image, alpha = render.render_text_and_alpha(text, font.path, rng,
                                                  height=IMAGE_HEIGHT)
      yield index, {'image': image, 'width': np.int32(image.shape[1]),
                    'text': text, 'font': font.family,
                    'length': np.int32(len(text)),
                    'text_box': render.ink_box(alpha)}
