"""The learned line detector: a small fully convolutional network (Flax)
predicting text-line cores (`layout.core_box`) at 1/4 of the page
resolution, its loss, its train step, and `LearnedDetector`, which turns its
map into line boxes with `layout.lines_from_map`.

Architecture (`LineDetectorNet`): a stride-2 stem and a stride-2 block bring
the page to 1/4; two more stride-2 blocks reach 1/8 and 1/16 for context (a
line's core is decided by what lies above and below it); a top-down path
upsamples and adds them back to 1/4 (a small FPN), and a 1x1 head gives one
logit per cell. Convolutions come from `ocr_jax.models.backend` (the same
CPU/GPU switch as the recogniser); BatchNorm and ReLU after each.

Loss: binary cross-entropy plus dice on the core map (dice keeps the thin
cores from being drowned by the background).
"""

import functools
import os
from typing import Any

from flax import serialization
import flax.linen as nn
from flax.training import train_state
import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image

from ocr_jax import pretrained
from ocr_jax.data import preprocess
from ocr_jax.models import backend as backend_lib
from ocr_jax.pages import layout
from ocr_jax.training import run_folder

ModuleDef = Any
# Map cells per page pixel, inverted: the network's output stride.
SCALE = 4
# Core probability above which a map cell belongs to a line.
DEFAULT_THRESHOLD = 0.3


class _ConvBN(nn.Module):
  features: int
  conv: ModuleDef
  strides: tuple[int, int] = (1, 1)
  kernel: tuple[int, int] = (3, 3)

  @nn.compact
  def __call__(self, x, train: bool):
    x = self.conv(self.features, self.kernel, strides=self.strides)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    return nn.relu(x)


def _upsample(x, like):
  """Nearest-neighbour upsampling of x to like's height and width."""
  b, h, w, c = x.shape
  x = jnp.repeat(jnp.repeat(x, like.shape[1] // h + 1, axis=1),
                 like.shape[2] // w + 1, axis=2)
  del b, c
  return x[:, :like.shape[1], :like.shape[2]]


class LineDetectorNet(nn.Module):
  """Page [b, h, w, 3] standardized -> core logits [b, ceil(h/4), ceil(w/4)].

  Attributes:
    widths: channels at 1/2, 1/4, 1/8 and 1/16.
    backend: the platform whose convolutions to use ('auto', 'cpu', ...).
  """
  widths: tuple[int, int, int, int] = (16, 32, 48, 64)
  backend: str = 'auto'

  @nn.compact
  def __call__(self, x, train: bool = False):
    conv = backend_lib.get_backend(self.backend).conv
    block = functools.partial(_ConvBN, conv=conv)
    w2, w4, w8, w16 = self.widths
    x = block(w2, strides=(2, 2))(x, train)
    c4 = block(w4)(block(w4, strides=(2, 2))(x, train), train)
    c8 = block(w8)(block(w8, strides=(2, 2))(c4, train), train)
    c16 = block(w16)(block(w16, strides=(2, 2))(c8, train), train)
    p8 = block(w4, kernel=(1, 1))(c8, train) + _upsample(
        block(w4, kernel=(1, 1))(c16, train), c8)
    p4 = block(w4, kernel=(1, 1))(c4, train) + _upsample(p8, c4)
    p4 = block(w4)(p4, train)
    return conv(1, (1, 1), use_bias=True)(p4)[..., 0]


TinyLineDetectorNet = functools.partial(LineDetectorNet, widths=(4, 8, 8, 8))


def loss_fn(logits: jax.Array, target: jax.Array,
            dice_weight: float = 1.0) -> jax.Array:
  """Mean BCE + dice_weight x (1 - dice) over [b, rows, cols] maps."""
  bce = optax.sigmoid_binary_cross_entropy(logits, target).mean()
  p = jax.nn.sigmoid(logits)
  axes = (1, 2)
  dice = (2 * (p * target).sum(axes) + 1.0) / (
      p.sum(axes) + target.sum(axes) + 1.0)
  return bce + dice_weight * (1.0 - dice.mean())


class TrainState(train_state.TrainState):
  batch_stats: Any


def create_state(model: nn.Module, rng: jax.Array, image_shape,
                 learning_rate: float) -> TrainState:
  """A fresh train state for pages of image_shape (height, width)."""
  variables = model.init(rng, jnp.zeros((1, *image_shape, 3)), train=False)
  return TrainState.create(apply_fn=model.apply, params=variables['params'],
                           batch_stats=variables['batch_stats'],
                           tx=optax.adamw(learning_rate))


def train_step(state: TrainState, images: jax.Array, targets: jax.Array,
               dice_weight: float = 1.0):
  """One step on [b, h, w, 3] standardized images, [b, rows, cols] targets."""
  def compute(params):
    logits, updates = state.apply_fn(
        {'params': params, 'batch_stats': state.batch_stats}, images,
        train=True, mutable=['batch_stats'])
    return loss_fn(logits, targets, dice_weight), updates
  (loss, updates), grads = jax.value_and_grad(compute, has_aux=True)(
      state.params)
  state = state.apply_gradients(grads=grads,
                                batch_stats=updates['batch_stats'])
  return state, loss


def standardize_page(image: np.ndarray) -> np.ndarray:
  """[h, w, 3] uint8 -> float32 standardized like the recogniser's input."""
  return preprocess.standardize(np.asarray(image, np.uint8))


def save_weights(path: str, variables, *, widths, max_side: int,
                 threshold: float = DEFAULT_THRESHOLD) -> None:
  """Writes a detector's variables, shape and map threshold as one file.

  `threshold` is the core probability that makes a map cell part of a
  line, chosen for these weights on validation pages.
  """
  data = {'widths': [int(w) for w in widths], 'max_side': int(max_side),
          'threshold': float(threshold),
          'variables': jax.device_get(variables)}
  with open(path, 'wb') as f:
    f.write(serialization.msgpack_serialize(data))


def export_run_folder(workdir: str, path: str, *, epoch: int | None = None,
                      threshold: float = DEFAULT_THRESHOLD) -> None:
  """Writes a detector of a run folder to `path` (the epoch's, else the
  best, else the latest)."""
  config, variables = run_folder.restore_variables(workdir, epoch)
  save_weights(path, variables, widths=config['widths'],
               max_side=config.get('page_size', 1024), threshold=threshold)


class LearnedDetector:
  """Detects lines with a trained `LineDetectorNet` (see the docstring).

  Pages are scaled so that their longer side is at most `max_side` pixels
  (the network's training resolution) and padded to a multiple of 16. The
  map goes through `layout.lines_from_map` (faint lines from
  `faint_threshold`; None: none) and the short and faint lines' boxes
  through `layout.fit_to_ink` on the page.
  """

  def __init__(self, model: nn.Module, variables, *, max_side: int = 1024,
               threshold: float = DEFAULT_THRESHOLD, min_score: float = 0.5,
               faint_threshold: float | None = layout.FAINT_THRESHOLD):
    self.model = model
    self.variables = variables
    self.max_side = max_side
    self.threshold = threshold
    self.min_score = min_score
    self.faint_threshold = faint_threshold
    self._apply = jax.jit(lambda v, x: jax.nn.sigmoid(
        model.apply(v, x, train=False)))

  @classmethod
  def from_run_folder(cls, workdir: str, **kwargs) -> 'LearnedDetector':
    """The detector trained in a run folder (best/ first)."""
    config, variables = run_folder.restore_variables(workdir)
    model = LineDetectorNet(widths=tuple(config['widths']))
    kwargs.setdefault('max_side', config.get('page_size', 1024))
    return cls(model, variables, **kwargs)

  @classmethod
  def from_file(cls, path: str, **kwargs) -> 'LearnedDetector':
    """A detector saved by `save_weights` (or `export_run_folder`)."""
    try:
      with open(path, 'rb') as f:
        data = serialization.msgpack_restore(f.read())
      widths, max_side = tuple(data['widths']), int(data['max_side'])
      variables = data['variables']
    except (ValueError, KeyError, TypeError) as e:
      raise ValueError(f'{path} is not a line detector file: {e}') from e
    kwargs.setdefault('max_side', max_side)
    kwargs.setdefault('threshold', float(data.get('threshold',
                                                  DEFAULT_THRESHOLD)))
    return cls(LineDetectorNet(widths=widths), variables, **kwargs)

  @classmethod
  def pretrained(cls, **kwargs) -> 'LearnedDetector':
    """The detector shipped with ocr_jax (`pretrained.DETECTOR`)."""
    return cls.from_file(pretrained.detector_path(), **kwargs)

  def probabilities(self, image: np.ndarray) -> tuple[np.ndarray, float]:
    """(core probabilities at 1/4 of the scaled page, page scale)."""
    height, width = image.shape[:2]
    factor = min(1.0, self.max_side / max(height, width))
    if factor < 1.0:
      image = np.asarray(Image.fromarray(image).resize(
          (max(1, round(width * factor)), max(1, round(height * factor))),
          Image.Resampling.BILINEAR))
    h, w = image.shape[:2]
    padded = np.full((-(-h // 16) * 16, -(-w // 16) * 16, 3), 255, np.uint8)
    padded[:h, :w] = image
    probs = self._apply(self.variables, standardize_page(padded)[None])[0]
    return np.asarray(probs)[:-(-h // SCALE), :-(-w // SCALE)], factor

  def detect(self, image: np.ndarray) -> list[layout.DetectedLine]:
    probs, factor = self.probabilities(image)
    lines = layout.lines_from_map(probs, scale=SCALE,
                                  threshold=self.threshold,
                                  min_score=self.min_score,
                                  faint_threshold=self.faint_threshold)
    return layout.fit_to_ink(image, to_page(lines, factor, image.shape[:2]))


def to_page(lines, factor: float, page_shape: tuple[int, int]
            ) -> list[layout.DetectedLine]:
  """Lines found on a page scaled by `factor`, in the page's pixels
  (clipped to its (height, width))."""
  height, width = page_shape
  found = []
  for line in lines:
    x0, y0, x1, y1 = (v / factor for v in line.box)
    found.append(layout.DetectedLine(
        (max(x0, 0.0), max(y0, 0.0), min(x1, width), min(y1, height)),
        line.score, line.faint))
  return found


def load_detector(spec: str | None = None, **kwargs) -> LearnedDetector:
  """A detector from a run folder, a `save_weights` file, or None: shipped.

  Raises:
    ValueError / OSError: the folder or file holds no detector.
  """
  if spec is None:
    return LearnedDetector.pretrained(**kwargs)
  if os.path.isdir(spec):
    return LearnedDetector.from_run_folder(spec, **kwargs)
  return LearnedDetector.from_file(spec, **kwargs)
