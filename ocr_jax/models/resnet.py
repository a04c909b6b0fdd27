"""ResNet-18-like backbone that keeps the horizontal resolution.

The torchvision ResNet-18 layout (7x7/2 stem, 3x3/2 max pool, four stages of
two basic blocks with 64/128/256/512 channels: 11.2 M parameters) with
per-stage (height, width) strides, so that text lines keep one feature column
per `time_stride` pixels of width. The default strides (2,1), (2,2), (2,1),
(2,1) turn a 64 x W image into a 1 x W/8 map: 16 time steps for the 128-pixel
digit images, enough for CTC on 8 digits with repeats.

On a map one row high the top and bottom rows of the stage-4 3x3 kernels
only meet zero padding (as in ASTER-style OCR ResNets); they stay in the
parameter tree, get zero gradient, and the 'matmul' convolution skips them.
"""

import functools
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ocr_jax.models.conv import Conv

Dtype = Any
Strides = Sequence[tuple[int, int]]

DEFAULT_STAGE_STRIDES = ((2, 1), (2, 2), (2, 1), (2, 1))


def batch_norm(train: bool, dtype: Dtype, **kwargs) -> nn.BatchNorm:
  """BatchNorm with PyTorch's defaults (momentum 0.1 = flax 0.9, eps 1e-5)."""
  return nn.BatchNorm(use_running_average=not train, momentum=0.9,
                      epsilon=1e-5, dtype=dtype, **kwargs)


class BasicBlock(nn.Module):
  """Two 3x3 convolutions with a residual connection.

  Attributes:
    features: output channels.
    strides: (height, width) stride of the first convolution and shortcut.
    dtype: computation dtype.
    conv_impl: see `ocr_jax.models.conv`.
  """
  features: int
  strides: tuple[int, int] = (1, 1)
  dtype: Dtype = jnp.float32
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    """[batch, h, w, cin] -> [batch, h / sh, w / sw, features]."""
    conv = functools.partial(Conv, use_bias=False, dtype=self.dtype,
                             conv_impl=self.conv_impl)
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
    dtype: computation dtype.
    conv_impl: see `ocr_jax.models.conv`.
  """
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  widths: Sequence[int] = (64, 128, 256, 512)
  stage_strides: Strides = DEFAULT_STAGE_STRIDES
  stem_features: int = 64
  dtype: Dtype = jnp.float32
  conv_impl: str = 'auto'

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
    x = Conv(self.stem_features, (7, 7), (2, 2), padding=((3, 3), (3, 3)),
             dtype=self.dtype, conv_impl=self.conv_impl, name='stem_conv')(x)
    x = nn.relu(batch_norm(train, self.dtype, name='stem_norm')(x))
    x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
    for i, (blocks, width, strides) in enumerate(
        zip(self.stage_sizes, self.widths, self.stage_strides)):
      for j in range(blocks):
        x = BasicBlock(width, tuple(strides) if j == 0 else (1, 1),
                       dtype=self.dtype, conv_impl=self.conv_impl,
                       name=f'stage{i + 1}_block{j + 1}')(x, train)
    return x
