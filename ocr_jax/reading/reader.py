"""Reading text from images with a trained model: the `Reader` API.

  from ocr_jax.reading import reader as reader_lib
  reader = reader_lib.load_reader('runs/baseline')      # a training workdir
  reader = reader_lib.load_reader('khmer_digits.ocrx')  # an exported file
  reader = reader_lib.load_reader('digits-small')       # a pretrained name
  result = reader.read('line.png')                     # one image
  results = reader.read(['a.png', 'b.jpg'])            # a list, in order
  results = reader.read('scans/', beam_size=5)         # a folder, sorted
  print(result.text, result.confidence, result.error)

Inputs are paths, encoded bytes, PIL images or RGB arrays; a folder stands
for its files in sorted name order (text files such as labels.tsv are
skipped). Each input gives one `ReadResult`; an input that cannot be read
(missing, corrupt, truncated, not an image, too large) gets its `error` and
does not stop the others.

Images go through `image_io.preprocess` (the training pipeline's resizing and
normalisation), then through the model in batches of up to `batch_size`.
A partial batch is padded to the next power of two (capped at batch_size),
so each beam size compiles at most log2(batch_size) + 1 times.

`text` is the decoded label after `normalize_khmer`; `confidence` is the
probability of the whole line (greedy: the product of the per-token
probabilities, EOS included; beam search: exp of the beam's log
probability). With `char_confidences=True`, `characters` lists (character,
probability) for each decoded character, before normalisation (beam search:
the decoder's probabilities of the chosen characters, by rescoring). CTC
models decode best path whatever the beam size (`ocr_jax.models.decode` has no CTC
prefix beam search).
"""

import dataclasses
import functools
import os
from typing import Any, Callable, Iterator

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from ocr_jax.text import charset
from ocr_jax.data import image_io
from ocr_jax.text import khmer_normalizer

# Files a folder input skips: labels and notes, not images.
SKIPPED_SUFFIXES = ('.tsv', '.txt', '.json', '.md', '.csv', '.yaml', '.yml')


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """What reading needs to know about a model, from its training config."""
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
                  ) -> 'ModelSpec':
    return cls(
        preset=config['model'], kind=kind,
        vocabulary=vocabulary or charset.get_vocabulary(config['vocabulary']),
        image_height=int(config['image_height']),
        image_width=int(config['image_width']),
        variable_width=is_variable_width(config),
        max_label_length=int(config['max_label_length']), config=config)


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


# --- The prediction function (also what export.py serialises) ----------------


def make_predict_fn(model, kind: str, max_length: int,
                    beam_size: int) -> Callable:
  """(variables, images, widths) -> (ids, line confidences, token probs).

  Args:
    model: the flax model.
    kind: 'attention' or 'ctc'.
    max_length: the longest label.
    beam_size: 1 for greedy decoding, else beam search.

  Returns:
    A pure function of (variables {'params', 'batch_stats'}, images
    [batch, height, width, 3] float32, widths [batch] int32) returning ids
    [batch, max_length + 1] int32, line confidences [batch] float32 and
    per-token probabilities [batch, max_length + 1] float32.
  """
  from ocr_jax.models import decode  # pylint: disable=g-import-not-at-top

  def predict(variables, images, widths):
    # CTC beam search is best path in ocr_jax.models.decode: the greedy ids.
    if beam_size == 1 or kind == 'ctc':
      ids, probs = decode.greedy_decode(model, variables, images, widths,
                                        max_length)
      probs = jnp.where(ids == charset.PAD_ID, 1.0, probs)
      line = jnp.prod(probs, axis=-1)
    else:
      ids, scores = decode.beam_search_decode(model, variables, images,
                                              widths, max_length, beam_size)
      line = jnp.exp(scores)
      probs = token_probabilities(model, kind, variables, images, widths,
                                  ids)
    return (ids.astype(jnp.int32), line.astype(jnp.float32),
            probs.astype(jnp.float32))

  return predict


def token_probabilities(model, kind, variables, images, widths, ids):
  """Per-token probabilities of given ids (teacher-forced rescoring).

  Attention models: the decoder's probability of each id given the previous
  ones (PAD positions 1.0). CTC models have none: NaN.
  """
  if kind != 'attention':
    return jnp.full(ids.shape, jnp.nan, jnp.float32)
  bos = jnp.full((ids.shape[0], 1), charset.BOS_ID, ids.dtype)
  decoder_inputs = jnp.concatenate([bos, ids[:, :-1]], axis=1)
  logits, _ = model.apply(variables, images, widths, decoder_inputs,
                          train=False)
  probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
  chosen = jnp.take_along_axis(probs, ids[..., None], axis=-1)[..., 0]
  return jnp.where(ids == charset.PAD_ID, 1.0, chosen)


# --- Reader -------------------------------------------------------------------


class Reader:
  """Reads text lines from images with one model (see the module docstring).

  Build one with `Reader.from_workdir`, `Reader.from_export`,
  `Reader.from_pretrained` or `load_reader`.
  """

  def __init__(self, spec: ModelSpec, variables,
               predict_fns: Callable[[int], Callable], *,
               batch_size: int = 32, description: str = '',
               model=None):
    """Wraps a prediction function.

    Args:
      spec: the model's input and label format.
      variables: {'params', 'batch_stats'} float arrays.
      predict_fns: beam_size -> jitted (variables, images, widths) ->
        (ids, line confidences, token probabilities); see make_predict_fn.
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

  # --- Constructors ---

  @classmethod
  def from_workdir(cls, workdir: str, *, batch_size: int = 32,
                   step: int | None = None,
                   conv_impl: str | None = None) -> 'Reader':
    """The best checkpoint of a training workdir (the latest if no best).

    Only the parameters and batch statistics are restored, not the
    optimizer state. `conv_impl` overrides the training config's (None:
    `inference_conv_impl()`); every implementation reads the same weights.
    """
    model, spec, variables = load_workdir(workdir, step=step,
                                          conv_impl=conv_impl)
    return cls.from_model(model, spec, variables, batch_size=batch_size,
                          description=workdir)

  @classmethod
  def from_model(cls, model, spec: ModelSpec, variables, *,
                 batch_size: int = 32, description: str = 'model'
                 ) -> 'Reader':
    """An in-process flax model and its variables."""

    @functools.cache
    def predict_fns(beam_size):
      return jax.jit(make_predict_fn(model, spec.kind, spec.max_label_length,
                                     beam_size))

    return cls(spec, variables, predict_fns, batch_size=batch_size,
               description=description, model=model)

  @classmethod
  def random(cls, preset: str = 'tiny', *, vocabulary: str = 'digits',
             image_height: int = 64, image_width: int = 128,
             max_label_length: int | None = None,
             dataset: str = 'khmer_digits', dtype: str = 'float32',
             conv_impl: str | None = None, seed: int = 0,
             batch_size: int = 32) -> 'Reader':
    """A randomly initialised preset (for tests and speed benchmarks)."""
    from ocr_jax import models  # pylint: disable=g-import-not-at-top
    if max_label_length is None:
      max_label_length = models.get_spec(preset).max_length
    conv_impl = conv_impl or inference_conv_impl()
    config = {'model': preset, 'vocabulary': vocabulary,
              'image_height': image_height, 'image_width': image_width,
              'max_label_length': max_label_length, 'dataset': dataset,
              'dtype': dtype, 'conv_impl': conv_impl, 'dropout_rate': 0.0}
    spec = ModelSpec.from_config(config, models.model_kind(preset))
    model = models.create_model(preset, vocab_size=spec.vocabulary.size,
                                dtype=jnp.dtype(dtype), conv_impl=conv_impl,
                                dropout_rate=0.0)
    return cls.from_model(model, spec, init_variables(model, spec, seed),
                          batch_size=batch_size,
                          description=f'random {preset}')

  @classmethod
  def from_export(cls, path: str, *, batch_size: int = 32) -> 'Reader':
    """A file written by `ocr_jax.reading.export` (runs without the model code)."""
    from ocr_jax.reading import export  # pylint: disable=g-import-not-at-top
    spec, variables, predict_fns = export.load(path)
    return cls(spec, variables, predict_fns, batch_size=batch_size,
               description=path)

  @classmethod
  def from_pretrained(cls, name: str, *, batch_size: int = 32) -> 'Reader':
    """A model shipped with the package (see `ocr_jax.pretrained`)."""
    from ocr_jax import pretrained  # pylint: disable=g-import-not-at-top
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
    sources = expand_inputs(inputs)
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
        image, width = image_io.preprocess(pixels, spec.image_height,
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
    result.text = khmer_normalizer.normalize_khmer(''.join(c for c, _ in characters))
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


def list_folder(folder: str) -> list[str]:
  """A folder's files in sorted name order, hidden and text files skipped."""
  names = sorted(
      name for name in os.listdir(folder)
      if not name.startswith('.') and not name.lower().endswith(
          SKIPPED_SUFFIXES) and not os.path.isdir(os.path.join(folder, name)))
  return [os.path.join(folder, name) for name in names]


def expand_inputs(inputs) -> list:
  """Flattens inputs to a list of single images (folders expanded)."""
  if not isinstance(inputs, (list, tuple)):
    inputs = [inputs]
  sources = []
  for item in inputs:
    if isinstance(item, (str, os.PathLike)) and os.path.isdir(item):
      sources.extend(list_folder(os.fspath(item)))
    else:
      sources.append(item)
  return sources


# --- Loading by name ----------------------------------------------------------


def load_reader(spec: str, *, batch_size: int = 32,
                conv_impl: str | None = None) -> Reader:
  """A Reader for a training workdir, an exported file or a pretrained name.

  Args:
    spec: a folder with `best/` or `checkpoints/` (a training workdir), a
      file written by `ocr_jax.reading.export`, or a name registered in
      `ocr_jax.pretrained`.
    batch_size: most images per model call.
    conv_impl: for a workdir, the convolution implementation (exported
      files keep the one they were exported with).

  Raises:
    ValueError: spec is none of these (the message lists the pretrained
      names).
  """
  from ocr_jax import pretrained  # pylint: disable=g-import-not-at-top
  if os.path.isdir(spec):
    if any(os.path.isdir(os.path.join(spec, d))
           for d in ('best', 'checkpoints')):
      return Reader.from_workdir(spec, batch_size=batch_size,
                                 conv_impl=conv_impl)
    raise ValueError(f'{spec} is a folder without best/ or checkpoints/: '
                     'not a training workdir')
  if os.path.isfile(spec):
    return Reader.from_export(spec, batch_size=batch_size)
  if spec in pretrained.MODELS:
    return Reader.from_pretrained(spec, batch_size=batch_size)
  raise ValueError(f'{spec!r} is neither a training workdir, an exported '
                   'model file nor a pretrained model; pretrained names: '
                   f'{sorted(pretrained.MODELS) or "(none shipped yet)"}')


def inference_conv_impl() -> str:
  """The convolution implementation used for reading unless told otherwise.

  On CPU 'auto', the per-shape rule of ocr_jax.models.conv that training
  uses; elsewhere 'native'. Forcing im2col ('matmul') everywhere is no
  faster: ms per image, greedy, float32, 2-core AVX-512 machine, idle,
  two runs each (benchmarks/inference_benchmark.py --conv_impl=...):

                     batch 1 auto / matmul    batch 64 auto / matmul
    small (ResNet)       11.3 / 13.6              5.5 / 7.9
    large (EffNet)   56.5, 61.2 / 56.6, 52.2  8.9, 8.5 / 9.4, 8.1
  """
  return 'auto' if jax.default_backend() == 'cpu' else 'native'


def load_workdir(workdir: str, *, step: int | None = None,
                 conv_impl: str | None = None):
  """Restores a model from a training workdir.

  Args:
    workdir: the training workdir.
    step: the epoch to load (from checkpoints/ or best/); None loads the
      best checkpoint, or the latest one if there is no best yet.
    conv_impl: convolution implementation (None: inference_conv_impl()).

  Returns:
    (flax model, ModelSpec, variables {'params', 'batch_stats'}).
  """
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  from ocr_jax import models  # pylint: disable=g-import-not-at-top
  manager, found = None, None
  for sub in ('best', 'checkpoints'):
    directory = os.path.abspath(os.path.join(workdir, sub))
    if not os.path.isdir(directory):
      continue
    manager = ocp.CheckpointManager(
        directory, options=ocp.CheckpointManagerOptions(create=False),
        item_handlers={'state': ocp.PyTreeCheckpointHandler(),
                       'host': ocp.JsonCheckpointHandler(),
                       'config': ocp.JsonCheckpointHandler()})
    steps = manager.all_steps()
    found = (step if step in steps else None) if step is not None else (
        max(steps) if steps else None)
    if found is not None:
      break
  if found is None:
    raise FileNotFoundError(
        f'no checkpoint{"" if step is None else f" for epoch {step}"} in '
        f'{workdir}/best or {workdir}/checkpoints')
  config = manager.restore(found, args=ocp.args.Composite(
      config=ocp.args.JsonRestore()))['config']
  kind = models.model_kind(config['model'])
  spec = ModelSpec.from_config(config, kind)
  model = models.create_model(
      config['model'], vocab_size=spec.vocabulary.size,
      dtype=jnp.dtype(config.get('dtype', 'float32')),
      conv_impl=conv_impl or inference_conv_impl(),
      dropout_rate=config.get('dropout_rate', 0.0))
  # Restore exactly the saved parameters and statistics (never the
  # optimizer state), shaped as saved, then check them against the model.
  saved = manager.item_metadata(found)['state']
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
      {k: saved[k] for k in ('params', 'batch_stats')
       if k in saved and jax.tree.leaves(saved[k])})
  state = manager.restore(found, args=ocp.args.Composite(
      state=ocp.args.PyTreeRestore(
          item=target, partial_restore=True,
          restore_args=ocp.checkpoint_utils.construct_restore_args(target))))
  variables = {'params': state['state']['params'],
               'batch_stats': state['state'].get('batch_stats', {})}
  _check_variables(variables, abstract_variables(model, spec), workdir)
  return model, spec, variables


def _check_variables(variables, expected, workdir: str) -> None:
  """Raises if saved shapes differ; warns about missing or extra entries."""
  saved = {jax.tree_util.keystr(path): leaf.shape for path, leaf in
           jax.tree_util.tree_leaves_with_path(variables)}
  wanted = {jax.tree_util.keystr(path): leaf.shape for path, leaf in
            jax.tree_util.tree_leaves_with_path(
                {k: expected.get(k, {}) for k in ('params', 'batch_stats')})}
  wrong = sorted(k for k in saved.keys() & wanted.keys()
                 if tuple(saved[k]) != tuple(wanted[k]))
  if wrong:
    raise ValueError(f'{workdir}: checkpoint shapes do not fit the model '
                     f'code: {wrong[:5]}')
  missing = sorted(wanted.keys() - saved.keys())
  extra = sorted(saved.keys() - wanted.keys())
  if missing or extra:
    logging.warning(
        '%s was saved by another version of the model code: missing %s, '
        'unused %s; greedy decoding works if only unused heads differ.',
        workdir, missing[:5], extra[:5])


def abstract_variables(model, spec: ModelSpec):
  """Shapes and dtypes of the model's variables, without computing them."""
  images = jnp.zeros((1, spec.image_height, spec.image_width, 3))
  widths = jnp.full((1,), spec.image_width, jnp.int32)
  decoder_inputs = jnp.zeros((1, spec.max_label_length + 1), jnp.int32)
  rng = jax.random.key(0)
  return jax.eval_shape(
      functools.partial(model.init, train=False),
      {'params': rng, 'dropout': rng}, images, widths, decoder_inputs)


def init_variables(model, spec: ModelSpec, seed: int = 0):
  """Randomly initialised variables (for tests and speed benchmarks)."""
  images = jnp.zeros((1, spec.image_height, spec.image_width, 3))
  widths = jnp.full((1,), spec.image_width, jnp.int32)
  decoder_inputs = jnp.zeros((1, spec.max_label_length + 1), jnp.int32)
  rng = jax.random.key(seed)
  variables = jax.jit(functools.partial(model.init, train=False))(
      {'params': rng, 'dropout': rng}, images, widths, decoder_inputs)
  return {'params': variables['params'],
          'batch_stats': variables.get('batch_stats', {})}
