"""EfficientNet-B0-like backbone that keeps the horizontal resolution.

The B0 layout (3x3/2 stem with 32 channels, seven stages of MBConv blocks
with squeeze-and-excitation, 1x1 head to 1280 channels: 4.0 M parameters
without the classifier) with (height, width) strides per stage. The default
strides turn a 64 x W image into a 2 x W/8 map. Stochastic depth is left out;
the model's dropout acts on the feature sequence instead.
"""

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ocr_jax.models.conv import Conv
from ocr_jax.models.resnet import batch_norm

Dtype = Any
ModuleDef = Any

# (expand ratio, kernel, output channels, repeats) per stage, as in B0.
B0_STAGES = ((1, 3, 16, 1), (6, 3, 24, 2), (6, 5, 40, 2), (6, 3, 80, 3),
             (6, 5, 112, 3), (6, 5, 192, 4), (6, 3, 320, 1))
# (height, width) stride of each stage's first block; B0 uses
# 1, 2, 2, 2, 1, 2, 1 in both directions.
DEFAULT_STAGE_STRIDES = ((1, 1), (2, 2), (2, 2), (2, 1), (1, 1), (2, 1),
                         (1, 1))


class MBConv(nn.Module):
  """Inverted residual block with squeeze-and-excitation.

  Attributes:
    features: output channels.
    expand_ratio: hidden channels / input channels.
    kernel: depthwise kernel size.
    strides: (height, width) stride of the depthwise convolution.
    se_ratio: squeeze channels / input channels.
    conv: the convolution module (`ocr_jax.models.backend`).
    dtype: computation dtype.
  """
  features: int
  expand_ratio: int
  kernel: int
  strides: tuple[int, int] = (1, 1)
  se_ratio: float = 0.25
  conv: ModuleDef = Conv
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    """[batch, h, w, cin] -> [batch, h / sh, w / sw, features]."""
    conv = functools.partial(self.conv, use_bias=False, dtype=self.dtype)
    cin = x.shape[-1]
    hidden = cin * self.expand_ratio
    y = x
    if self.expand_ratio != 1:
      y = conv(hidden, (1, 1), name='expand_conv')(y)
      y = nn.swish(batch_norm(train, self.dtype, name='expand_norm')(y))
    y = conv(hidden, (self.kernel, self.kernel), self.strides,
             feature_group_count=hidden, name='depthwise_conv')(y)
    y = nn.swish(batch_norm(train, self.dtype, name='depthwise_norm')(y))
    squeeze = max(1, int(cin * self.se_ratio))
    s = jnp.mean(y, axis=(1, 2), keepdims=True)
    s = nn.swish(nn.Dense(squeeze, dtype=self.dtype, name='se_reduce')(s))
    s = nn.sigmoid(nn.Dense(hidden, dtype=self.dtype, name='se_expand')(s))
    y = conv(self.features, (1, 1), name='project_conv')(y * s)
    y = batch_norm(train, self.dtype, name='project_norm')(y)
    if cin == self.features and tuple(self.strides) == (1, 1):
      y = x + y
    return y


class EfficientNet(nn.Module):
  """EfficientNet-B0 backbone producing a feature map.

  Attributes:
    stages: (expand ratio, kernel, channels, repeats) per stage.
    stage_strides: (height, width) stride of each stage's first block.
    stem_features: channels of the 3x3/2 stem.
    head_features: channels of the final 1x1 convolution.
    conv: the convolution module (`ocr_jax.models.backend`).
    dtype: computation dtype.
  """
  stages: Sequence[tuple[int, int, int, int]] = B0_STAGES
  stage_strides: Sequence[tuple[int, int]] = DEFAULT_STAGE_STRIDES
  stem_features: int = 32
  head_features: int = 1280
  conv: ModuleDef = Conv
  dtype: Dtype = jnp.float32

  @property
  def time_stride(self) -> int:
    """Input pixels per output time step."""
    stride = 2
    for s in self.stage_strides:
      stride *= s[1]
    return stride

  @nn.compact
  def __call__(self, images: jax.Array, train: bool) -> jax.Array:
    """Feature map of the images.

    Args:
      images: [batch, height, width, channels].
      train: whether BatchNorm uses batch statistics.

    Returns:
      [batch, height / 2 / prod(sh), width / time_stride, head_features].
    """
    conv = functools.partial(self.conv, use_bias=False, dtype=self.dtype)
    x = conv(self.stem_features, (3, 3), (2, 2), name='stem_conv')(
        images.astype(self.dtype))
    x = nn.swish(batch_norm(train, self.dtype, name='stem_norm')(x))
    for i, ((expand, kernel, features, repeats), strides) in enumerate(
        zip(self.stages, self.stage_strides)):
      for j in range(repeats):
        x = MBConv(features, expand, kernel,
                   tuple(strides) if j == 0 else (1, 1), conv=self.conv,
                   dtype=self.dtype,
                   name=f'stage{i + 1}_block{j + 1}')(x, train)
    x = conv(self.head_features, (1, 1), name='head_conv')(x)
    return nn.swish(batch_norm(train, self.dtype, name='head_norm')(x))
