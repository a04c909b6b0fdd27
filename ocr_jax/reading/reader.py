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
batch_size), so each beam size and width compiles at most
log2(batch_size) + 1 times.

Widths: a fixed-size model (digit crops) reads every image at its
image_width. A variable-width model (text lines) reads each batch at a
bucket width (`ReaderSpec.bucket_widths`: multiples of the training
config's `bucket_step` up to image_width, as in training), not at
image_width, so a 300 px line costs about a fifth of a 1,536 px one: the
reader takes up to CHUNK_BATCHES batches of inputs at a time, sorts them by
their fitted width, cuts them into batches of consecutive widths, pads
each batch to the bucket of its widest line, and returns results in input
order. A line is zero past its true width whatever the width of its batch,
and the model masks frames past it, so the bucket changes a line's reading
only through the few columns where its convolutions see the right edge (as
training saw it). An exported file's functions take widths that are a
multiple of the backbone's width stride (`ReaderSpec.width_multiple`; the
buckets are rounded up to one); files exported with a fixed width (see
`ocr_jax.reading.ocrx`) are read at image_width.

`text` is the decoded label after `normalize_khmer`; `confidence` is the
probability of the whole line (greedy: the product of the per-token
probabilities, EOS included; beam search: exp of the beam's log
probability). With `char_confidences=True`, `characters` lists (character,
probability) for each decoded character, before normalisation (beam search:
the decoder's probabilities of the chosen characters, by rescoring).

CTC models decode greedy (beam_size 1) on the device, by best path. With
beam_size > 1 the device returns per-frame log-probabilities
(`ocr_jax.models.decode.ctc_frame_log_probs`; an exported file's `frames`
function) and the host runs CTC prefix beam search on them
(`ocr_jax.reading.ctc_decoding`), with an optional character LM fused into
the beam (`use_lm`, or `lm_path` when loading; off by default; `lm_weight`
of `read` overrides the weight, 0 turns it off). There a character's
probability is its largest frame probability over its best alignment, and
`confidence` is exactly the product of the characters' probabilities.
"""

import dataclasses
import os
from typing import Any, Callable, Iterator

import jax.numpy as jnp
import numpy as np

from ocr_jax import pretrained
from ocr_jax.data import image_io
from ocr_jax.data import preprocess
from ocr_jax.reading import ctc_decoding
from ocr_jax.reading import ocrx
from ocr_jax.text import char_lm
from ocr_jax.text import charset
from ocr_jax.text import khmer_normalizer

# A variable-width model reads up to this many batches of inputs at a time,
# sorted by width (a fixed-size model reads one batch at a time).
CHUNK_BATCHES = 8
# CTC beam search with a character LM (`Reader.use_lm`): the defaults of
# its weight and per-character length bonus; see
# benchmarks/lm_gain_benchmark.py for their measured effect.
DEFAULT_LM_WEIGHT = 0.5
DEFAULT_LENGTH_BONUS = 1.0


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
  # Whether the prediction functions take images of any width (every
  # in-process model; exports with a symbolic width) ...
  any_width: bool = True
  # ... that is a multiple of this (exports: the backbone's width stride).
  width_multiple: int = 1

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
        max_label_length=meta['max_label_length'], config=meta['config'],
        any_width=bool(meta.get('any_width', False)),
        width_multiple=int(meta.get('width_multiple', 1)))

  @property
  def bucket_widths(self) -> tuple[int, ...]:
    """The widths images are padded to (image_width alone if fixed).

    The training buckets, each rounded up to a multiple of width_multiple.
    """
    if not (self.variable_width and self.any_width):
      return (self.image_width,)
    step = int(self.config.get('bucket_step',
                               preprocess.DEFAULT_BUCKET_STEP))
    multiple = self.width_multiple
    return tuple(sorted({-(-width // multiple) * multiple for width in
                         preprocess.bucket_widths(self.image_width, step)}))


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
               model=None, frames_fn: Callable[[], Callable] | None = None):
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
      frames_fn: CTC models: () -> jitted (variables, images, widths) ->
        (log_probs [b, frames, vocab], lengths [b]) for host beam search
        (see `ocr_jax.models.decode.ctc_frame_log_probs`).
    """
    if batch_size < 1:
      raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    self.spec = spec
    self.variables = variables
    self.batch_size = batch_size
    self.description = description
    self.model = model
    self.predict_fns = predict_fns
    self.frames_fn = frames_fn
    # Host CTC beam search settings (see `use_lm`).
    self.lm = None
    self.lm_weight = 0.0
    self.length_bonus = 0.0
    self.min_char_prob = ctc_decoding.DEFAULT_MIN_CHAR_PROB

  def use_lm(self, lm: 'char_lm.CharLM | str | None',
             lm_weight: float = DEFAULT_LM_WEIGHT,
             length_bonus: float = DEFAULT_LENGTH_BONUS) -> 'Reader':
    """Fuses a character LM into CTC beam search (beam_size > 1).

    Args:
      lm: a `char_lm.CharLM`, the path of one (`CharLM.save`), a shipped
        LM's name (`pretrained.LANGUAGE_MODELS`, e.g. 'khmer'), or None to
        turn it off.
      lm_weight: the LM's weight (alpha) in the beam's score.
      length_bonus: added to the score per character (beta).

    Returns:
      self.
    """
    if self.spec.kind != 'ctc' and lm is not None:
      raise ValueError('an LM is fused into CTC beam search only; this is '
                       f'a {self.spec.kind} model')
    self.lm = (char_lm.load(pretrained.lm_path(lm)) if isinstance(lm, str)
               else lm)
    self.lm_weight = float(lm_weight) if lm is not None else 0.0
    self.length_bonus = float(length_bonus) if lm is not None else 0.0
    return self

  @classmethod
  def from_export(cls, path: str, *, batch_size: int = 32) -> 'Reader':
    """A `.ocrx` file (see `ocr_jax.reading.ocrx`); no model code needed."""
    meta, variables, predict_fns = ocrx.read(path)
    return cls(ReaderSpec.from_meta(meta), variables, predict_fns,
               batch_size=batch_size, description=path,
               frames_fn=predict_fns.frames)

  @classmethod
  def from_pretrained(cls, name: str, *, batch_size: int = 32) -> 'Reader':
    """A model shipped with the package (see `ocr_jax.pretrained`)."""
    return cls.from_export(pretrained.model_path(name),
                           batch_size=batch_size)

  # --- Reading ---

  def read(self, inputs, *, beam_size: int = 1,
           char_confidences: bool = False, lm_weight: float | None = None):
    """Reads one image, a list of them, or a folder.

    Args:
      inputs: one image (path, bytes, PIL image, array), a folder path, or a
        sequence of images and folders.
      beam_size: 1 for greedy decoding, more for beam search.
      char_confidences: also return per-character probabilities.
      lm_weight: CTC beam search: the LM's weight for this call (None: the
        reader's, see `use_lm`; 0: no LM).

    Returns:
      One ReadResult for a single image; a list (in input order, folders
      expanded in sorted order) otherwise.
    """
    results = list(self.iter_read(inputs, beam_size=beam_size,
                                  char_confidences=char_confidences,
                                  lm_weight=lm_weight))
    if _is_single_image(inputs):
      return results[0]
    return results

  def iter_read(self, inputs, *, beam_size: int = 1,
                char_confidences: bool = False,
                lm_weight: float | None = None) -> Iterator[ReadResult]:
    """Like `read`, yielding results as batches finish (bounded memory)."""
    sources = image_io.expand_inputs(inputs)
    size = self.batch_size
    if len(self.spec.bucket_widths) > 1:
      size *= CHUNK_BATCHES
    for start in range(0, len(sources), size):
      chunk = sources[start:start + size]
      yield from self._read_chunk(chunk, beam_size, char_confidences,
                                  lm_weight)

  def predict_batch(self, images: np.ndarray, widths: np.ndarray, *,
                    beam_size: int = 1, lm_weight: float | None = None):
    """Runs the model on preprocessed inputs.

    Args:
      images: [batch, height, width, 3] float32, normalised; width is
        image_width, or any width if `spec.any_width` (zero-padded on the
        right to a multiple of `spec.width_multiple`).
      widths: [batch] int32 widths covered by the images.
      beam_size: 1 for greedy decoding, more for beam search.
      lm_weight: CTC beam search: the LM's weight (None: the reader's).

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
                                  beam_size=beam_size, lm_weight=lm_weight)
               for i in range(0, images.shape[0], self.batch_size)]
      return tuple(np.concatenate(outputs) for outputs in zip(*parts))
    extra = -images.shape[2] % self.spec.width_multiple
    if extra:
      images = np.pad(images, ((0, 0), (0, 0), (0, extra), (0, 0)))
    count = images.shape[0]
    padded = bucket_size(count, self.batch_size)
    if padded != count:
      images = np.concatenate([images, np.zeros(
          (padded - count,) + images.shape[1:], np.float32)])
      widths = np.concatenate([widths, np.full(
          (padded - count,), images.shape[2], np.int32)])
    if self.spec.kind == 'ctc' and beam_size > 1:
      return self._ctc_beam_search(images, widths, count, beam_size,
                                   lm_weight)
    outputs = self.predict_fns(beam_size)(
        self.variables, jnp.asarray(images), jnp.asarray(widths))
    return tuple(np.asarray(x)[:count] for x in outputs)

  def _ctc_beam_search(self, images, widths, count, beam_size, lm_weight):
    """Frame log-probs on the device, prefix beam search on the host."""
    if self.frames_fn is None:
      raise ValueError(f'{self.description} has no frame function for CTC '
                       'beam search')
    log_probs, lengths = self.frames_fn()(
        self.variables, jnp.asarray(images), jnp.asarray(widths))
    weight = self.lm_weight if lm_weight is None else float(lm_weight)
    lm = self.lm if weight else None
    slots = self.spec.max_label_length + 1
    ids = np.full((count, slots), charset.PAD_ID, np.int32)
    probs = np.ones((count, slots), np.float32)
    lines = np.ones((count,), np.float32)
    for row, best in enumerate(ctc_decoding.decode_batch(
        np.asarray(log_probs)[:count], np.asarray(lengths)[:count],
        beam_size=beam_size, lm=lm, lm_weight=weight if lm else 0.0,
        length_bonus=self.length_bonus if lm else 0.0,
        vocabulary_chars=self.spec.vocabulary.chars,
        min_char_prob=self.min_char_prob)):
      kept = best[0].ids[:slots - 1]
      ids[row, :len(kept)] = kept
      ids[row, len(kept)] = charset.EOS_ID
      probs[row, :len(kept)] = best[0].char_confidences[:len(kept)]
      lines[row] = np.prod(probs[row, :len(kept)])
    return ids, lines, probs

  def _read_chunk(self, sources, beam_size, char_confidences,
                  lm_weight=None):
    results, prepared = [], []  # prepared: (width, image, result).
    for source in sources:
      result = ReadResult(source=image_io.describe_source(source))
      try:
        image, width = self._prepare(image_io.read_image(source))
      except image_io.ImageReadError as e:
        result.error = e.reason
      else:
        prepared.append((width, image, result))
      results.append(result)
    # Narrowest first; a stable sort keeps a fixed-size model's order.
    prepared.sort(key=lambda item: item[0])
    for start in range(0, len(prepared), self.batch_size):
      batch = prepared[start:start + self.batch_size]
      width = preprocess.bucket_for(batch[-1][0], self.spec.bucket_widths)
      ids, lines, probs = self.predict_batch(
          _stack_padded([image for _, image, _ in batch], width),
          np.asarray([width for width, _, _ in batch], np.int32),
          beam_size=beam_size, lm_weight=lm_weight)
      for (_, _, result), row_ids, line, row_probs in zip(batch, ids, lines,
                                                          probs):
        self._fill(result, row_ids, float(line), row_probs, char_confidences)
    return results

  def _prepare(self, pixels: np.ndarray) -> tuple[np.ndarray, int]:
    """The model input of one image and its width (at most its bucket's)."""
    spec = self.spec
    buckets = spec.bucket_widths
    bucket = buckets[-1]
    if len(buckets) > 1:
      fitted, _ = preprocess.fit_size(pixels.shape[1], pixels.shape[0],
                                      spec.image_height, spec.image_width,
                                      variable_width=True)
      bucket = preprocess.bucket_for(fitted, buckets)
    return preprocess.prepare(pixels, spec.image_height,
                              min(bucket, spec.image_width),
                              spec.variable_width)

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


def _stack_padded(images: list[np.ndarray], width: int) -> np.ndarray:
  """[b, h, width, 3]: the images, zero-padded on the right.

  A prepared line is already zero past its true width, so padding it with
  zeros is the same as preparing it at the wider width.
  """
  batch = np.zeros((len(images), images[0].shape[0], width, 3), np.float32)
  for row, image in enumerate(images):
    batch[row, :, :image.shape[1]] = image
  return batch


def _is_single_image(inputs) -> bool:
  if isinstance(inputs, (str, os.PathLike)):
    return not os.path.isdir(inputs)
  return not isinstance(inputs, (list, tuple))
