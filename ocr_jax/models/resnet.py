"""ResNet-18-like backbone that keeps the horizontal resolution.

The torchvision ResNet-18 layout (7x7/2 stem, 3x3/2 max pool, four stages of
two basic blocks with 64/128/256/512 channels: 11.2 M parameters) with
per-stage (height, width) strides, so that text lines keep one feature column
per `time_stride` pixels of width. The default strides (2,2), (2,1), (2,1),
(2,1) turn a 64 x W image into a 1 x W/8 map: 16 time steps for the 128-pixel
digit images, enough for CTC on 8 digits with repeats. The width reaches its
final resolution in stage 1, which makes every later stage cheaper than with
the width halved in stage 2 (benchmarks/model_step_benchmark.py
--stage_strides compares layouts).

On a map one row high the top and bottom rows of the stage-4 3x3 kernels
only meet zero padding (as in ASTER-style OCR ResNets); they stay in the
parameter tree, get zero gradient, and the 'matmul' convolution skips them.
"""

import functools
import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp

from ocr_jax.models.conv import Conv

Dtype = Any
ModuleDef = Any
Strides = Sequence[tuple[int, int]]

DEFAULT_STAGE_STRIDES = ((2, 2), (2, 1), (2, 1), (2, 1))


def batch_norm(train: bool, dtype: Dtype, **kwargs) -> nn.BatchNorm:
  """BatchNorm with PyTorch's defaults (momentum 0.1 = flax 0.9, eps 1e-5)."""
  return nn.BatchNorm(use_running_average=not train, momentum=0.9,
                      epsilon=1e-5, dtype=dtype, **kwargs)


def _pool_windows(x: jax.Array) -> list[jax.Array]:
  """The nine [b, ceil(h/2), ceil(w/2), c] windows of a 3x3/2 pool, pad 1."""
  b, h, w, c = x.shape
  ho, wo = (h + 1) // 2, (w + 1) // 2
  xp = jnp.pad(x, ((0, 0), (1, 2 * ho - h), (1, 2 * wo - w), (0, 0)),
               constant_values=-jnp.inf)
  return [lax.slice(xp, (0, i, j, 0), (b, i + 2 * ho - 1, j + 2 * wo - 1, c),
                    (1, 2, 2, 1)) for i in range(3) for j in range(3)]


def _pool_forward(x: jax.Array) -> jax.Array:
  out = None
  for window in _pool_windows(x):
    out = window if out is None else jnp.maximum(out, window)
  return out


@jax.custom_vjp
def _max_pool(x: jax.Array) -> jax.Array:
  return _pool_forward(x)


def _max_pool_fwd(x):
  out = _pool_forward(x)
  return out, (x, out)


def _shift(y: jax.Array, rows: int, cols: int, fill: float) -> jax.Array:
  """y[:, a + rows, b + cols], filled past the end."""
  _, h, w, _ = y.shape
  y = y[:, rows:, cols:]
  return jnp.pad(y, ((0, 0), (0, rows), (0, cols), (0, 0)),
                 constant_values=fill)[:, :h, :w]


def _max_pool_bwd(residuals, g):
  """Sends each output's gradient to the inputs equal to its maximum.

  Input row 2a is covered by output row a only; row 2a + 1 by output rows
  a and a + 1 (likewise for columns), so each input element compares itself
  with at most four neighbouring outputs. Every element computes only its
  own sum, which XLA fuses into one cheap loop.
  """
  # In float32 whatever the dtype: XLA:CPU computes bfloat16 elementwise
  # ops through conversions, which here cost twice the arithmetic.
  x_dtype = residuals[0].dtype
  x, out = (r.astype(jnp.float32) for r in residuals)
  g = g.astype(jnp.float32)
  b, h, w, c = x.shape
  _, ho, wo, _ = out.shape
  xp = jnp.pad(x, ((0, 0), (0, 2 * ho - h), (0, 2 * wo - w), (0, 0)),
               constant_values=-jnp.inf).reshape(b, ho, 2, wo, 2, c)
  zero = jnp.zeros((), g.dtype)
  neighbours = {(r, s): (_shift(out, r, s, jnp.inf), _shift(g, r, s, 0))
                for r in (0, 1) for s in (0, 1)}
  rows = []
  for p in (0, 1):
    cols = []
    for q in (0, 1):
      x_pq = xp[:, :, p, :, q]
      grad = zero
      for r in range(p + 1):
        for s in range(q + 1):
          out_rs, g_rs = neighbours[(r, s)]
          grad = grad + jnp.where(x_pq == out_rs, g_rs, zero)
      cols.append(grad)
    rows.append(jnp.stack(cols, axis=3))
  grid = jnp.stack(rows, axis=2).reshape(b, 2 * ho, 2 * wo, c)
  return (grid[:, :h, :w].astype(x_dtype),)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def max_pool_3x3_s2(x: jax.Array) -> jax.Array:
  """3x3 max pool, stride 2, padding 1 (torchvision's ResNet stem pool).

  XLA's own `reduce_window` and its gradient; for GPU and TPU.

  Args:
    x: [batch, height, width, channels].

  Returns:
    [batch, ceil(height / 2), ceil(width / 2), channels].
  """
  return nn.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))


def cpu_max_pool_3x3_s2(x: jax.Array) -> jax.Array:
  """`max_pool_3x3_s2` with a gradient that is fast on XLA:CPU.

  Same values as `nn.max_pool`, and the same gradient except on ties: every
  input equal to its window's maximum receives the window's gradient (XLA
  picks the first). The pool follows a ReLU, whose only ties are zeros with
  negative pre-activations, whose gradient the ReLU drops. The gradient is
  hand-written because XLA:CPU lowers the gradient of `lax.reduce_window`
  to a reduction over (value, index) tuples, and the gradient of nine
  elementwise maxima to a loop that recomputes the maxima per element; both
  cost more than the stem convolution.

  Args:
    x: [batch, height, width, channels].

  Returns:
    [batch, ceil(height / 2), ceil(width / 2), channels].
  """
  return _max_pool(x)


class BasicBlock(nn.Module):
  """Two 3x3 convolutions with a residual connection.

  Attributes:
    features: output channels.
    strides: (height, width) stride of the first convolution and shortcut.
    conv: the convolution module (`ocr_jax.models.backend`).
    dtype: computation dtype.
  """
  features: int
  strides: tuple[int, int] = (1, 1)
  conv: ModuleDef = Conv
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    """[batch, h, w, cin] -> [batch, h / sh, w / sw, features]."""
    conv = functools.partial(self.conv, use_bias=False, dtype=self.dtype)
    y = conv(self.features, (3, 3), self.strides)(x)
    y = nn.relu(batch_norm(train, self.dtype)(y))
    y = conv(self.features, (3, 3))(y)
    y = batch_norm(train, self.dtype, scale_init=nn.initializers.zeros)(y)
    if x.shape[-1] != self.features or tuple(self.strides) != (1, 1):
      x = conv(self.features, (1, 1), self.strides, name='shortcut_conv')(x)
      x = batch_norm(train, self.dtype, name='shortcut_norm')(x)
    return nn.relu(x + y)


class ResNet(nn.Module):
  """ResNet backbone producing a feature sequence along the width.

  Attributes:
    stage_sizes: basic blocks per stage.
    widths: channels per stage.
    stage_strides: (height, width) stride of each stage's first block.
    stem_features: channels of the 7x7 stem convolution.
    conv: the convolution module (`ocr_jax.models.backend`).
    max_pool: the 3x3/2 stem pool, x -> pooled x (`max_pool_3x3_s2` or
      `cpu_max_pool_3x3_s2`).
    dtype: computation dtype.
  """
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  widths: Sequence[int] = (64, 128, 256, 512)
  stage_strides: Strides = DEFAULT_STAGE_STRIDES
  stem_features: int = 64
  conv: ModuleDef = Conv
  max_pool: Callable[[jax.Array], jax.Array] = max_pool_3x3_s2
  dtype: Dtype = jnp.float32

  @property
  def time_stride(self) -> int:
    """Input pixels per output time step."""
    return 4 * math.prod(s[1] for s in self.stage_strides)

  @nn.compact
  def __call__(self, images: jax.Array, train: bool) -> jax.Array:
    """Feature map of the images.

    Args:
      images: [batch, height, width, channels].
      train: whether BatchNorm uses batch statistics.

    Returns:
      [batch, height / 4 / prod(sh), width / time_stride, widths[-1]].
    """
    x = images.astype(self.dtype)
    x = self.conv(self.stem_features, (7, 7), (2, 2),
                  padding=((3, 3), (3, 3)), dtype=self.dtype,
                  name='stem_conv')(x)
    x = nn.relu(batch_norm(train, self.dtype, name='stem_norm')(x))
    x = self.max_pool(x)
    for i, (blocks, width, strides) in enumerate(
        zip(self.stage_sizes, self.widths, self.stage_strides)):
      for j in range(blocks):
        x = BasicBlock(width, tuple(strides) if j == 0 else (1, 1),
                       conv=self.conv, dtype=self.dtype,
                       name=f'stage{i + 1}_block{j + 1}')(x, train)
    return x
