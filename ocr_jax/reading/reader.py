"""Reading text from images with a trained model: the `Reader` API.

  from ocr_jax.reading import load
  reader = load.load_reader('runs/baseline')       # a training run folder
  reader = load.load_reader('khmer_digits.ocrx')   # an exported file
  reader = load.load_reader('khmer-digits')        # a pretrained name
  result = reader.read('line.png')                 # one image
  results = reader.read(['a.png', 'b.jpg'])        # a list, in order
  results = reader.read('scans/', beam_size=5)     # a folder, sorted
  print(result.text, result.confidence, result.error)

`Reader.from_export` and `Reader.from_pretrained` need no model code: this
module imports neither ocr_jax.models nor orbax nor tensorflow, so an
exported model runs with jax, numpy and Pillow alone. Readers of in-process
models (run folders, random weights) are built by `ocr_jax.reading.load`.

Inputs are paths, encoded bytes, PIL images or RGB arrays; a folder stands
for its files in sorted name order (text files such as labels.tsv are
skipped, see `image_io.expand_inputs`). Each input gives one `ReadResult`;
an input that cannot be read (missing, corrupt, truncated, not an image, too
large) gets its `error` and does not stop the others.

Images go through `ocr_jax.data.preprocess.prepare` (the resizing and
standardisation training uses), then through the model in batches of up to
`batch_size`. A partial batch is padded to the next power of two (capped at
batch_size), so each beam size compiles at most log2(batch_size) + 1 times.

`text` is the decoded label after `normalize_khmer`; `confidence` is the
probability of the whole line (greedy: the product of the per-token
probabilities, EOS included; beam search: exp of the beam's log
probability). With `char_confidences=True`, `characters` lists (character,
probability) for each decoded character, before normalisation (beam search:
the decoder's probabilities of the chosen characters, by rescoring). CTC
models decode best path whatever the beam size (`ocr_jax.models.decode` has
no CTC prefix beam search).
"""

import dataclasses
import os
from typing import Any, Callable, Iterator

import jax.numpy as jnp
import numpy as np

from ocr_jax import pretrained
from ocr_jax.data import image_io
from ocr_jax.data import preprocess
from ocr_jax.reading import ocrx
from ocr_jax.text import charset
from ocr_jax.text import khmer_normalizer


@dataclasses.dataclass(frozen=True)
class ReaderSpec:
  """What reading needs to know about a model, from its training config.

  (Not `ocr_jax.models.Architecture`, which describes the network.)
  """
  preset: str
  kind: str  # 'attention' or 'ctc'.
  vocabulary: charset.Vocabulary
  image_height: int
  image_width: int
  variable_width: bool
  max_label_length: int
  config: dict[str, Any]

  @classmethod
  def from_config(cls, config: dict[str, Any], kind: str,
                  vocabulary: charset.Vocabulary | None = None
                  ) -> 'ReaderSpec':
    """The spec of a training config (a dict) for a model of `kind`."""
    return cls(
        preset=config['model'], kind=kind,
        vocabulary=vocabulary or charset.get_vocabulary(config['vocabulary']),
        image_height=int(config['image_height']),
        image_width=int(config['image_width']),
        variable_width=is_variable_width(config),
        max_label_length=int(config['max_label_length']), config=config)

  @classmethod
  def from_meta(cls, meta: dict[str, Any]) -> 'ReaderSpec':
    """The spec stored in an exported file (see `ocr_jax.reading.ocrx`)."""
    return cls(
        preset=meta['model'], kind=meta['kind'],
        vocabulary=charset.Vocabulary(meta['vocabulary'],
                                      meta['vocabulary_chars']),
        image_height=meta['image_height'], image_width=meta['image_width'],
        variable_width=meta['variable_width'],
        max_label_length=meta['max_label_length'], config=meta['config'])


def is_variable_width(config: dict[str, Any]) -> bool:
  """Text-line datasets pad to a variable width; digit crops do not."""
  return not str(config.get('dataset', 'khmer_digits')).startswith(
      'khmer_digits')


@dataclasses.dataclass
class ReadResult:
  """The reading of one image.

  Attributes:
    source: the path (or a description of an in-memory image).
    text: the normalised text ('' when the image could not be read).
    confidence: probability of the whole line in [0, 1]; None on error.
    characters: [(character, probability)] when asked for, else None.
    error: why the image could not be read; None on success.
  """
  source: str
  text: str = ''
  confidence: float | None = None
  characters: list[tuple[str, float]] | None = None
  error: str | None = None

  @property
  def ok(self) -> bool:
    return self.error is None


class Reader:
  """Reads text lines from images with one model (see the module docstring).

  Build one with `Reader.from_export`, `Reader.from_pretrained` or
  `ocr_jax.reading.load` (run folders, pretrained names, random weights).
  """

  def __init__(self, spec: ReaderSpec, variables,
               predict_fns: Callable[[int], Callable], *,
               batch_size: int = 32, description: str = '',
               model=None):
    """Wraps a prediction function.

    Args:
      spec: the model's input and label format.
      variables: {'params', 'batch_stats'} float arrays.
      predict_fns: beam_size -> jitted (variables, images, widths) ->
        (ids, line confidences, token probabilities); see
        `ocr_jax.models.decode.make_predict_fn`.
      batch_size: most images per model call.
      description: where the model came from, for messages.
      model: the flax model, when one is in process (else None).
    """
    if batch_size < 1:
      raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    self.spec = spec
    self.variables = variables
    self.batch_size = batch_size
    self.description = description
    self.model = model
    self.predict_fns = predict_fns

  @classmethod
  def from_export(cls, path: str, *, batch_size: int = 32) -> 'Reader':
    """A `.ocrx` file (see `ocr_jax.reading.ocrx`); no model code needed."""
    meta, variables, predict_fns = ocrx.read(path)
    return cls(ReaderSpec.from_meta(meta), variables, predict_fns,
               batch_size=batch_size, description=path)

  @classmethod
  def from_pretrained(cls, name: str, *, batch_size: int = 32) -> 'Reader':
    """A model shipped with the package (see `ocr_jax.pretrained`)."""
    return cls.from_export(pretrained.model_path(name),
                           batch_size=batch_size)

  # --- Reading ---

  def read(self, inputs, *, beam_size: int = 1,
           char_confidences: bool = False):
    """Reads one image, a list of them, or a folder.

    Args:
      inputs: one image (path, bytes, PIL image, array), a folder path, or a
        sequence of images and folders.
      beam_size: 1 for greedy decoding, more for beam search.
      char_confidences: also return per-character probabilities.

    Returns:
      One ReadResult for a single image; a list (in input order, folders
      expanded in sorted order) otherwise.
    """
    results = list(self.iter_read(inputs, beam_size=beam_size,
                                  char_confidences=char_confidences))
    if _is_single_image(inputs):
      return results[0]
    return results

  def iter_read(self, inputs, *, beam_size: int = 1,
                char_confidences: bool = False) -> Iterator[ReadResult]:
    """Like `read`, yielding results as batches finish (bounded memory)."""
    sources = image_io.expand_inputs(inputs)
    for start in range(0, len(sources), self.batch_size):
      chunk = sources[start:start + self.batch_size]
      yield from self._read_chunk(chunk, beam_size, char_confidences)

  def predict_batch(self, images: np.ndarray, widths: np.ndarray, *,
                    beam_size: int = 1):
    """Runs the model on preprocessed inputs.

    Args:
      images: [batch, height, width, 3] float32, normalised.
      widths: [batch] int32 widths covered by the images.
      beam_size: 1 for greedy decoding, more for beam search.

    Returns:
      numpy (ids [batch, max_length + 1], line confidences [batch], token
      probabilities [batch, max_length + 1]).
    """
    if beam_size < 1:
      raise ValueError(f'beam_size must be >= 1, got {beam_size}')
    images = np.asarray(images, np.float32)
    widths = np.asarray(widths, np.int32)
    if images.shape[0] > self.batch_size:
      parts = [self.predict_batch(images[i:i + self.batch_size],
                                  widths[i:i + self.batch_size],
                                  beam_size=beam_size)
               for i in range(0, images.shape[0], self.batch_size)]
      return tuple(np.concatenate(outputs) for outputs in zip(*parts))
    count = images.shape[0]
    padded = bucket_size(count, self.batch_size)
    if padded != count:
      images = np.concatenate([images, np.zeros(
          (padded - count,) + images.shape[1:], np.float32)])
      widths = np.concatenate([widths, np.full(
          (padded - count,), self.spec.image_width, np.int32)])
    outputs = self.predict_fns(beam_size)(
        self.variables, jnp.asarray(images), jnp.asarray(widths))
    return tuple(np.asarray(x)[:count] for x in outputs)

  def _read_chunk(self, sources, beam_size, char_confidences):
    spec = self.spec
    results, images, widths, rows = [], [], [], []
    for source in sources:
      result = ReadResult(source=image_io.describe_source(source))
      try:
        pixels = image_io.read_image(source)
        image, width = preprocess.prepare(pixels, spec.image_height,
                                          spec.image_width,
                                          spec.variable_width)
      except image_io.ImageReadError as e:
        result.error = e.reason
      else:
        images.append(image)
        widths.append(width)
        rows.append(result)
      results.append(result)
    if images:
      ids, lines, probs = self.predict_batch(
          np.stack(images), np.asarray(widths, np.int32),
          beam_size=beam_size)
      for result, row_ids, line, row_probs in zip(rows, ids, lines, probs):
        self._fill(result, row_ids, float(line), row_probs, char_confidences)
    return results

  def _fill(self, result, ids, line, probs, char_confidences):
    vocab = self.spec.vocabulary
    characters = []
    for token, prob in zip(ids, probs):
      if token == charset.EOS_ID:
        break
      if token in (charset.PAD_ID, charset.BOS_ID, charset.BLANK_ID):
        continue
      characters.append((vocab.decode([token]), float(prob)))
    result.text = khmer_normalizer.normalize_khmer(
        ''.join(c for c, _ in characters))
    result.confidence = line
    if char_confidences:
      result.characters = characters


def bucket_size(count: int, batch_size: int) -> int:
  """The padded batch size: the next power of two, at most batch_size."""
  size = 1
  while size < count:
    size *= 2
  return min(size, batch_size)


def _is_single_image(inputs) -> bool:
  if isinstance(inputs, (str, os.PathLike)):
    return not os.path.isdir(inputs)
  return not isinstance(inputs, (list, tuple))
