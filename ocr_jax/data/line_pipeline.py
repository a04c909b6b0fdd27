"""Batches of synthetic text lines, bucketed by width: training and eval.

Every sample comes from `synth_lines.make_sample(seed, index, split, ...)`, a
pure function of its arguments, and goes through reading's preprocessing,
`preprocess.prepare(image, height, bucket_width, variable_width=True)`
(resized to `config.image_height` keeping the aspect ratio, the width capped
at `config.image_width`, standardized, zero past the true width). Batches
are the dicts of `input_pipeline` (B = per-process batch size, W = the
batch's bucket width):

  image         float32 [B, H, W, 3], exactly 0 past each row's `width`.
  width         int32 [B], true width in pixels after resizing.
  labels        int32 [B, max_label_length + 1]: char ids, EOS, then PAD.
  label_length  int32 [B], characters in the label (EOS excluded).
  _mask         bool [B], True for real examples (always True in training).

W is one of `bucket_widths(config.image_width, config.bucket_step)`
(multiples of the step below the maximum, then the maximum), so a jitted
step compiles a handful of shapes.

Training (`TrainStream`): batch k is a pure function of (seed, k), so a run
resumed at step k sees exactly the batches it would have seen. The global
sample indices are cut into chunks of `config.bucket_chunk_batches` (C)
global batches: chunk c covers [c * C * B, (c + 1) * C * B). Each process
renders its share of a chunk (the indices equal to its process index modulo
the process count), sorts them by width (then index), cuts them into C
batches and orders those batches by a permutation drawn from (seed, c).
Several processes agree on each batch's width (the widest of their own).
Samples are rendered by `config.data_workers` processes (0: in this
process), one chunk ahead of the step.

Evaluation (`create_eval_sets`): for a split ('validation' or 'test'), one
fixed set of `config.eval_lines_per_set` lines per tier in
`config.eval_tiers` and per font group (trained fonts; held-out fonts, named
'<tier>_heldout'). A set is rendered on first use and kept (as uint8); its
lines are sorted by width and cut into batches of `config.eval_batch_size`,
the last padded with zero rows whose `_mask` is False. Every line appears
exactly once.

What the lines show is `config.synth_content`, the `content` of
`synth_lines.make_sample`, for training and evaluation alike: 'text'
(default) or 'digits' (Khmer digit strings, drawn in the 'clean' and 'scan'
tiers only; pair it with the 'digits' vocabulary and eval_tiers
('clean', 'scan')).

Labels are encoded with `config.vocabulary`; a character outside it, or a
label longer than `config.max_label_length`, raises an error naming the
sample.

Config fields read: image_height, image_width, max_label_length,
vocabulary, batch_size, eval_batch_size, seed, and (with defaults, see
DEFAULTS) data_workers, bucket_step, bucket_chunk_batches, eval_lines_per_set,
eval_tiers, eval_seed, synth_content.
"""

import dataclasses
import math
import multiprocessing
import weakref
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from concurrent import futures
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from ocr_jax.data import preprocess
from ocr_jax.data import synth_lines
from ocr_jax.text import charset

# Defaults of the config fields that only line configs set.
DEFAULTS = {
    'bucket_step': preprocess.DEFAULT_BUCKET_STEP,
    'data_workers': 1,
    'bucket_chunk_batches': 8,
    'eval_lines_per_set': 64,
    'eval_tiers': ('clean', 'scan', 'long'),
    'eval_seed': 0,
    'synth_content': 'text',
}
# Chunks rendered ahead of the one being consumed.
PREFETCH_CHUNKS = 2
# Samples per task sent to a worker.
TASK_SAMPLES = 8


def config_value(config, name: str):
  """`config.<name>`, or its DEFAULTS value when the config lacks it."""
  return config.get(name, DEFAULTS[name])


# One definition of the buckets, shared with reading.
bucket_widths = preprocess.bucket_widths
bucket_for = preprocess.bucket_for


@dataclasses.dataclass(frozen=True)
class RenderSpec:
  """What a worker needs to turn a sample index into a model input.

  Attributes:
    height: model image height.
    max_width: model image width (the widest bucket).
    bucket_step: bucket widths are its multiples (and max_width).
    vocabulary: vocabulary name for the labels.
    max_label_length: longest label allowed.
    sample_fn: `synth_lines.make_sample` (tests pass a stand-in); a
      module-level function, so that it pickles by name.
    content: what the lines show (`synth_lines.CONTENTS`); passed to
      sample_fn as `content=` unless it is the default 'text', so that
      stand-ins without the option keep working.
  """
  height: int
  max_width: int
  bucket_step: int
  vocabulary: str
  max_label_length: int
  sample_fn: Callable[..., Any] = synth_lines.make_sample
  content: str = 'text'

  @classmethod
  def from_config(cls, config, sample_fn=None) -> 'RenderSpec':
    content = config_value(config, 'synth_content')
    if content not in synth_lines.CONTENTS:
      raise ValueError(f'unknown synth_content {content!r}; valid: '
                       f'{synth_lines.CONTENTS}')
    return cls(config.image_height, config.image_width,
               config_value(config, 'bucket_step'), config.vocabulary,
               config.max_label_length, sample_fn or synth_lines.make_sample,
               content)

  @property
  def buckets(self) -> tuple[int, ...]:
    return bucket_widths(self.max_width, self.bucket_step)


@dataclasses.dataclass
class Line:
  """One rendered, prepared line.

  Attributes:
    pixels: uint8 [height, width, 3], `preprocess.prepare`'s output up to
      the true width, as pixels (`preprocess.to_uint8`; standardizing them
      again gives prepare's floats exactly).
    width: true width.
    labels: int32 [max_label_length + 1] (ids, EOS, PAD).
    length: characters in the label.
    index: the sample index.
    text, font, tier: the sample's.
  """
  pixels: np.ndarray
  width: int
  labels: np.ndarray
  length: int
  index: int
  text: str
  font: str
  tier: str


def render_line(spec: RenderSpec, request: tuple) -> Line:
  """Renders sample `request` = (seed, index, split, held_out, tier)."""
  seed, index, split, held_out, tier = request
  options = {} if spec.content == 'text' else {'content': spec.content}
  sample = spec.sample_fn(seed, index, split, held_out_fonts=held_out,
                          tier=tier, **options)
  height, width = sample.image.shape[:2]
  true_width, _ = preprocess.fit_size(width, height, spec.height,
                                      spec.max_width, variable_width=True)
  bucket = bucket_for(true_width, spec.buckets)
  prepared, true_width = preprocess.prepare(sample.image, spec.height, bucket,
                                            variable_width=True)
  name = (f'{split} sample {index} (seed {seed}, tier {sample.tier}, font '
          f'{sample.font}, content {spec.content})')
  ids = charset.get_vocabulary(spec.vocabulary).encode(sample.text,
                                                       sample=name)
  if len(ids) > spec.max_label_length:
    raise ValueError(f'label of {name} has {len(ids)} characters, more than '
                     f'max_label_length {spec.max_label_length}')
  return Line(preprocess.to_uint8(prepared[:, :true_width]), true_width,
              np.asarray(charset.pad_labels(ids, spec.max_label_length),
                         np.int32), len(ids), index, sample.text,
              sample.font, sample.tier)


def stack_lines(lines: Sequence[Line | None], width: int, height: int,
                max_label_length: int) -> dict[str, np.ndarray]:
  """A batch of `width` columns; None rows are padding (`_mask` False)."""
  image = np.zeros((len(lines), height, width, 3), np.float32)
  widths = np.zeros((len(lines),), np.int32)
  labels = np.zeros((len(lines), max_label_length + 1), np.int32)
  lengths = np.zeros((len(lines),), np.int32)
  mask = np.zeros((len(lines),), bool)
  for row, line in enumerate(lines):
    if line is None:
      continue
    image[row, :, :line.width] = preprocess.standardize(line.pixels)
    widths[row], labels[row] = line.width, line.labels
    lengths[row], mask[row] = line.length, True
  return {'image': image, 'width': widths, 'labels': labels,
          'label_length': lengths, '_mask': mask}


def _batch_width(lines: Sequence[Line | None], spec: RenderSpec) -> int:
  widest = max((line.width for line in lines if line is not None), default=1)
  return bucket_for(widest, spec.buckets)


def render_lines(spec: RenderSpec, requests: list[tuple]) -> list[Line]:
  """`render_line` of each request (one worker task)."""
  return [render_line(spec, request) for request in requests]


class _Pending:
  """Lines being rendered: `get()` waits and returns them in order."""

  def __init__(self, parts: list[futures.Future] | None = None,
               lines: list[Line] | None = None):
    self._parts, self._lines = parts, lines

  def get(self) -> list[Line]:
    if self._lines is None:
      # A worker that died (killed, crashed) raises BrokenProcessPool here
      # instead of hanging the run.
      self._lines = [line for part in self._parts for line in part.result()]
    return self._lines


def _shutdown(executor: futures.ProcessPoolExecutor):
  executor.shutdown(wait=False, cancel_futures=True)


class _Renderer:
  """Renders lists of requests in this process or in worker processes."""

  def __init__(self, spec: RenderSpec, workers: int):
    self._spec = spec
    self._executor = None
    if workers > 0:
      # Spawned, not forked: the parent runs JAX's threads.
      self._executor = futures.ProcessPoolExecutor(
          workers, mp_context=multiprocessing.get_context('spawn'))
      self._finalizer = weakref.finalize(self, _shutdown, self._executor)

  def submit(self, requests: list[tuple]) -> _Pending:
    """Starts rendering `requests` (at once in this process, if no pool)."""
    if self._executor is None:
      return _Pending(lines=render_lines(self._spec, requests))
    return _Pending(parts=[
        self._executor.submit(render_lines, self._spec,
                              requests[i:i + TASK_SAMPLES])
        for i in range(0, len(requests), TASK_SAMPLES)])

  def close(self):
    if self._executor is not None:
      self._finalizer()
      self._executor = None


class TrainStream:
  """Training batches by step: `batch(k)` depends only on (seed, k).

  Use `iterate(start_step)` for the batches from a step on; sequential
  reads render the next chunks ahead in the worker pool.
  """

  def __init__(self, config, *, seed: int | None = None, sample_fn=None,
               process_index: int | None = None,
               process_count: int | None = None):
    self.spec = RenderSpec.from_config(config, sample_fn)
    self.seed = config.seed if seed is None else seed
    self.process_index = (jax.process_index() if process_index is None
                          else process_index)
    self.process_count = (jax.process_count() if process_count is None
                          else process_count)
    if config.batch_size % self.process_count:
      raise ValueError(f'batch_size {config.batch_size} is not divisible by '
                       f'the {self.process_count} processes')
    self.global_batch = config.batch_size
    self.batch_size = config.batch_size // self.process_count
    self.chunk_batches = config_value(config, 'bucket_chunk_batches')
    self._renderer = _Renderer(self.spec,
                               config_value(config, 'data_workers'))
    self._pending = {}  # chunk -> handle of its rendering
    self._chunk = None  # (chunk, its batches in step order)

  def chunk_requests(self, chunk: int) -> list[tuple]:
    """This process's (seed, index, 'train', False, None) of a chunk."""
    start = chunk * self.chunk_batches * self.global_batch
    stop = start + self.chunk_batches * self.global_batch
    return [(self.seed, index, 'train', False, None)
            for index in range(start + self.process_index, stop,
                               self.process_count)]

  def _submit(self, chunk: int):
    if chunk not in self._pending:
      self._pending[chunk] = self._renderer.submit(self.chunk_requests(chunk))

  def _assemble(self, chunk: int, lines: list[Line]) -> list[dict]:
    lines = sorted(lines, key=lambda line: (line.width, line.index))
    groups = [lines[i * self.batch_size:(i + 1) * self.batch_size]
              for i in range(self.chunk_batches)]
    order = np.random.default_rng([self.seed, chunk]).permutation(
        self.chunk_batches)
    groups = [groups[i] for i in order]
    widths = np.array([_batch_width(group, self.spec)
                       for group in groups], np.int32)
    if self.process_count > 1:
      # Every process's rows of a step must have the same shape.
      widths = np.max(multihost_utils.process_allgather(widths), axis=0)
    return [stack_lines(group, int(width), self.spec.height,
                        self.spec.max_label_length)
            for group, width in zip(groups, widths)]

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """Training batch `step` (0-based), this process's rows."""
    chunk, position = divmod(step, self.chunk_batches)
    if self._chunk is None or self._chunk[0] != chunk:
      self._submit(chunk)
      lines = self._pending.pop(chunk).get()
      # Forget chunks that a jump backwards or forwards left behind.
      for stale in [c for c in self._pending if c < chunk]:
        del self._pending[stale]
      self._chunk = (chunk, self._assemble(chunk, lines))
    for ahead in range(1, PREFETCH_CHUNKS + 1):
      self._submit(chunk + ahead)
    return self._chunk[1][position]

  def iterate(self, start_step: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Batches start_step, start_step + 1, ... (endless)."""
    step = start_step
    while True:
      yield self.batch(step)
      step += 1

  def close(self):
    """Stops the worker processes."""
    self._renderer.close()


class EvalSet:
  """A fixed list of lines of one split, tier and font group.

  Iterating yields the padded batches (see the module docstring); the
  lines are rendered on the first iteration and kept.
  """

  def __init__(self, spec: RenderSpec, requests: list[tuple],
               batch_size: int, process_index: int, process_count: int):
    self.spec, self.requests = spec, requests
    self.process_index, self.process_count = process_index, process_count
    self.local_batch = batch_size // process_count
    self.global_batch = self.local_batch * process_count
    self._lines = None

  def __len__(self) -> int:
    return math.ceil(len(self.requests) / self.global_batch)

  def lines(self) -> list[Line]:
    """Every line of the set, sorted by (width, index); rendered once."""
    if self._lines is None:
      # Every process renders the whole set, so that all agree on the
      # batches' widths without talking to each other. In this process: a
      # few hundred lines take seconds, less than starting workers.
      lines = [render_line(self.spec, request) for request in self.requests]
      self._lines = sorted(lines, key=lambda line: (line.width, line.index))
    return self._lines

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    lines = self.lines()
    for start in range(0, len(lines), self.global_batch):
      group = lines[start:start + self.global_batch]
      width = _batch_width(group, self.spec)
      group = group + [None] * (self.global_batch - len(group))
      mine = group[self.process_index * self.local_batch:
                   (self.process_index + 1) * self.local_batch]
      yield stack_lines(mine, width, self.spec.height,
                        self.spec.max_label_length)


def eval_set_names(config) -> list[str]:
  """'<tier>' (trained fonts) and '<tier>_heldout' for each eval tier."""
  return [f'{tier}{suffix}' for tier in config_value(config, 'eval_tiers')
          for suffix in ('', '_heldout')]


def create_eval_sets(config, split: str, *, sample_fn=None,
                     process_index: int | None = None,
                     process_count: int | None = None
                     ) -> dict[str, EvalSet]:
  """The fixed evaluation sets of a split, by name (see eval_set_names)."""
  process_index = (jax.process_index() if process_index is None
                   else process_index)
  process_count = (jax.process_count() if process_count is None
                   else process_count)
  if config.eval_batch_size < process_count:
    raise ValueError(f'eval_batch_size {config.eval_batch_size} is smaller '
                     f'than the process count {process_count}')
  spec = RenderSpec.from_config(config, sample_fn)
  seed = config_value(config, 'eval_seed')
  count = config_value(config, 'eval_lines_per_set')
  sets = {}
  for name in eval_set_names(config):
    tier, held_out = name.removesuffix('_heldout'), name.endswith('_heldout')
    requests = [(seed, index, split, held_out, tier)
                for index in range(count)]
    sets[name] = EvalSet(spec, requests, config.eval_batch_size,
                         process_index, process_count)
  return sets
