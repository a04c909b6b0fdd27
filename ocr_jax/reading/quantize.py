"""Smaller weights for shipping: int8 per-channel quantization and bfloat16.

int8: every floating-point weight with at least `min_size` elements and two
or more dimensions (convolution and dense kernels, LSTM gate kernels,
embeddings) is stored as int8 values and one float32 scale per output
channel (the last axis; per row for embedding tables), symmetric:

  scale[c] = max |w[..., c]| / 127,   q = round(w / scale) in [-127, 127]

The error of each weight is at most scale / 2. Biases and batch-norm
statistics stay float32 (they are a small fraction of the bytes). Weights
are dequantized once, when a model is loaded, so inference runs at float32
speed and accuracy close to float32; only the file is about 4x smaller.

bfloat16: every floating-point weight is stored as bfloat16 (2x smaller) and
cast back to float32 at load.

This module only converts arrays. What a format costs a trained model (CER
before and after, size on disk, speed) is measured by
benchmarks/quantize_benchmark.py.
"""

import flax
import jax
import jax.numpy as jnp
import numpy as np

FORMATS = ('float32', 'int8', 'bfloat16')
# Weights smaller than this many elements are never quantized.
MIN_SIZE = 1024


@flax.struct.dataclass
class QuantizedArray:
  """int8 values with float32 scales along one axis (a pytree node).

  Attributes:
    values: int8 array of the weight's shape.
    scale: float32 array broadcastable to the weight's shape (size 1 on
      every axis but the channel axis).
  """
  values: jax.Array
  scale: jax.Array

  @property
  def shape(self):
    return self.values.shape

  def dequantize(self, dtype=jnp.float32):
    return (self.values.astype(jnp.float32) * self.scale).astype(dtype)


def channel_axis(path: tuple[str, ...], ndim: int) -> int:
  """The axis that keeps its own scale: rows for embeddings, else the last."""
  del ndim
  return 0 if path and path[-1] == 'embedding' else -1


def quantize_array(array, axis: int = -1) -> QuantizedArray:
  """Symmetric int8 quantization with one scale per index of `axis`."""
  array = np.asarray(array, np.float32)
  axis = axis % array.ndim
  reduce_axes = tuple(a for a in range(array.ndim) if a != axis)
  scale = np.max(np.abs(array), axis=reduce_axes, keepdims=True) / 127.0
  scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
  values = np.clip(np.rint(array / scale), -127, 127).astype(np.int8)
  return QuantizedArray(values=values, scale=scale)


def _is_weight(path, leaf, min_size):
  del path
  return (hasattr(leaf, 'dtype') and jnp.issubdtype(leaf.dtype, jnp.floating)
          and leaf.ndim >= 2 and leaf.size >= min_size)


def quantize_int8(tree, *, min_size: int = MIN_SIZE):
  """Replaces the large float weights of a pytree by QuantizedArrays."""

  def convert(key_path, leaf):
    path = tuple(_key_name(k) for k in key_path)
    if _is_weight(path, leaf, min_size):
      return quantize_array(leaf, channel_axis(path, leaf.ndim))
    return np.asarray(leaf)

  return jax.tree_util.tree_map_with_path(convert, tree)


def to_bfloat16(tree):
  """Casts every floating-point leaf to bfloat16 (numpy, via ml_dtypes)."""
  return jax.tree.map(
      lambda x: np.asarray(x, jnp.bfloat16)
      if jnp.issubdtype(np.asarray(x).dtype, jnp.floating) else np.asarray(x),
      tree)


def dequantize(tree, dtype=np.float32):
  """QuantizedArrays and bfloat16 leaves back to `dtype` numpy arrays."""

  def convert(leaf):
    if isinstance(leaf, QuantizedArray):
      return (np.asarray(leaf.values, np.float32) *
              np.asarray(leaf.scale, np.float32)).astype(dtype)
    leaf = np.asarray(leaf)
    if jnp.issubdtype(leaf.dtype, jnp.floating):
      return leaf.astype(dtype)
    return leaf

  return jax.tree.map(convert, tree,
                      is_leaf=lambda x: isinstance(x, QuantizedArray))


def convert_weights(tree, weight_format: str):
  """Stores a float pytree in `weight_format` (one of FORMATS)."""
  if weight_format == 'float32':
    return jax.tree.map(lambda x: np.asarray(x), tree)
  if weight_format == 'int8':
    return quantize_int8(tree)
  if weight_format == 'bfloat16':
    return to_bfloat16(tree)
  raise ValueError(f'unknown weight format {weight_format!r}; valid: '
                   f'{FORMATS}')


def max_abs_error(tree, converted) -> float:
  """Largest |w - dequantized(w)| over all weights."""
  restored = dequantize(converted)
  errors = jax.tree.map(
      lambda a, b: float(np.max(np.abs(np.asarray(a, np.float32) - b)))
      if np.size(a) else 0.0, tree, restored)
  return max(jax.tree.leaves(errors), default=0.0)


def tree_nbytes(tree) -> int:
  """Bytes held by the arrays of a pytree (QuantizedArrays included)."""
  return sum(np.asarray(x).nbytes for x in jax.tree.leaves(tree))


def _key_name(key) -> str:
  for attribute in ('key', 'name', 'idx'):
    if hasattr(key, attribute):
      return str(getattr(key, attribute))
  return str(key)
