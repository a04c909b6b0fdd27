"""The one backend switch: how a model computes on its target platform.

`create_model(..., backend=...)` resolves a `Backend` once and hands its
parts down the model, as flax's examples/imagenet hands down
`conv: ModuleDef`. No module looks at the machine it is traced on, so a model
built for 'tpu' or 'cuda' traces, lowers and exports the same code on any
host, a CPU included.

Every backend holds the same parameters ('kernel' and 'bias' of
`flax.linen.Conv`, 'kernel' [9, 1, features] of the location filter):
checkpoints move freely between them, and a model trained on one platform
reads on any other.

GPU and TPU ('gpu', 'cuda', 'rocm', 'tpu') use plain XLA: `lax` convolutions
('native'), `nn.max_pool`, the location filter as a convolution, and LSTMs in
the model dtype.

XLA:CPU gets four tricks, each measured on a 2-core AVX-512 machine:

  conv             'cpu': per layer, XLA's convolution or an im2col product
                   (`ocr_jax.models.conv.cpu_conv_impl`, figures in
                   benchmarks/results/conv.json). XLA's convolution wins for
                   the 3-channel stem and is on par for stride-1 3x3 layers
                   below 256 channels; im2col products win for 1x1 kernels,
                   strided layers (XLA's input gradient of a strided
                   convolution is slow), 256+ input channels, and maps whose
                   kernel taps meet only padding. Depthwise convolutions are
                   shifted products with a hand-written gradient: XLA's
                   depthwise gradient took 3/4 of an EfficientNet step.
                   Reading uses the same rule: forcing im2col everywhere is
                   no faster (ms per image, rule / im2col everywhere,
                   greedy, float32, idle machine, two runs each):

                                   batch 1                  batch 64
                   small (ResNet)  11.3 / 13.6            5.5 / 7.9
                   large (EffNet)  56.5, 61.2 / 56.6, 52.2  8.9, 8.5 / 9.4, 8.1

  max_pool         `resnet.cpu_max_pool_3x3_s2`, the stem pool with a
                   hand-written gradient: XLA:CPU lowers the gradient of
                   `lax.reduce_window` to a reduction over (value, index)
                   tuples, and the gradient of nine elementwise maxima to a
                   loop that recomputes the maxima per element; both cost
                   more than the stem convolution.
  location_filter  the 'product' form of `LocationFilter`: XLA:CPU's
                   convolution for this one-channel filter (and above all its
                   kernel gradient, once per decoder step) cost more than the
                   rest of the attention.
  recurrent_dtype  float32 LSTMs (BiLSTM encoder, attention decoder) whatever
                   the model dtype: their per-step products are small and
                   latency-bound, and on XLA:CPU bfloat16 only adds
                   conversions to every step (a bfloat16 `small` step is ~8%
                   faster with float32 LSTMs).
"""

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from ocr_jax.models import attention_decoder
from ocr_jax.models import conv
from ocr_jax.models import resnet

Dtype = Any
ModuleDef = Any

# Platform names `get_backend` accepts besides 'auto' (jax's names).
PLATFORMS = ('cpu', 'gpu', 'cuda', 'rocm', 'tpu')


@dataclasses.dataclass(frozen=True)
class Backend:
  """How a model computes on one platform (see the module docstring).

  Attributes:
    name: the platform, one of PLATFORMS.
    conv: the convolution module, `functools.partial(conv.Conv, impl=...)`.
    max_pool: the ResNet stem's 3x3/2 max pool, x -> pooled x.
    location_filter: the attention's `LocationFilter`, as a ModuleDef.
    recurrent_dtype: computation dtype of the LSTMs; None: the model dtype.
  """
  name: str
  conv: ModuleDef
  max_pool: Callable[[jax.Array], jax.Array]
  location_filter: ModuleDef
  recurrent_dtype: Dtype | None

  def with_conv_impl(self, impl: str) -> 'Backend':
    """This backend with every convolution forced to `impl` (benchmarks)."""
    if impl not in conv.CONV_IMPLS:
      raise ValueError(f'conv impl {impl!r} is not one of {conv.CONV_IMPLS}')
    return dataclasses.replace(self,
                               conv=functools.partial(conv.Conv, impl=impl))


# Built once, so that models built for the same platform compare equal.
_CPU = dict(
    conv=functools.partial(conv.Conv, impl='cpu'),
    max_pool=resnet.cpu_max_pool_3x3_s2,
    location_filter=functools.partial(attention_decoder.LocationFilter,
                                      form='product'),
    recurrent_dtype=jnp.float32)
_XLA = dict(
    conv=functools.partial(conv.Conv, impl='native'),
    max_pool=resnet.max_pool_3x3_s2,
    location_filter=functools.partial(attention_decoder.LocationFilter,
                                      form='conv'),
    recurrent_dtype=None)
_BACKENDS = {name: Backend(name, **(_CPU if name == 'cpu' else _XLA))
             for name in PLATFORMS}


def get_backend(platform: str = 'auto') -> Backend:
  """The backend for a platform.

  Args:
    platform: 'auto' (this process's `jax.default_backend()`) or one of
      PLATFORMS.

  Returns:
    The `Backend`.

  Raises:
    ValueError: for an unknown platform, naming the valid ones.
  """
  name = jax.default_backend() if platform == 'auto' else platform
  if name not in _BACKENDS:
    raise ValueError(f'unknown backend {platform!r}; valid: auto, '
                     f'{", ".join(PLATFORMS)}')
  return _BACKENDS[name]
